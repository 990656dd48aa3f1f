/* What `dendrite train CFG --save CKPT` does, through the run API: the data the cfg names, the validation split,
 * normalisation, training with a line per epoch, the best epoch restored, the test set evaluated, a checkpoint.
 *
 *   make examples && build/examples/train_cfg examples/mnist_mlp.cfg mlp.ckpt
 *   build/dendrite eval mlp.ckpt      # the same test accuracy: eval loads the data the same way
 */
#include <dendrite.h>
#include <stdio.h>

static dn_status print_epoch(void *user, const dn_epoch_stats *st)
{
    (void)user;
    printf("epoch %d/%d  loss %.4f  val_loss %.4f  val_acc %.4f  %.1fs\n", st->epoch, st->epochs, st->train_loss,
           st->val_loss, st->val_accuracy, st->seconds);
    return DN_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CFG [CKPT]\n", argv[0]);
        return 2;
    }
    dn_run *run = NULL;
    dn_run_eval test = {0};
    dn_status s = dn_run_open(argv[1], NULL, &run);
    if (!s) s = dn_run_train(run, print_epoch, NULL, NULL);
    if (!s && dn_run_test_set(run)) s = dn_run_evaluate(run, NULL, &test);
    if (!s && argc == 3) s = dn_run_save(run, argv[2]);
    if (s) {
        fprintf(stderr, "%s: %s\n", argv[1], dn_last_error());
        dn_run_free(run);
        return 1;
    }
    if (test.n) printf("test: loss %.4f, accuracy %.4f on %lld samples\n", test.loss, test.accuracy, (long long)test.n);
    dn_run_free(run);
    return 0;
}
