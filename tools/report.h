/* dendrite report / visualize: pictures of a training run, for the command-line tool (public header only).
 *
 * Both take the arguments after the verb (as main's argv + 2) and return the process exit status:
 * 0 done, 1 an error (message on stderr), 2 a usage error.
 */
#ifndef DENDRITE_TOOLS_REPORT_H
#define DENDRITE_TOOLS_REPORT_H

/* `dendrite report LOG.jsonl [CKPT] [-o report.html] [--data DIR|FILE]`: one self-contained HTML page with the
 * loss, accuracy and learning-rate curves of a `--log` file and, given a checkpoint, its layer table, test-set
 * confusion matrix, misclassified test images and first-layer filters. */
int dn_cli_report(int argc, char **argv);

/* `dendrite visualize CKPT [-o filters.svg|filters.png]`: the first convolutional layer's filters as a grid of
 * greyscale tiles, each normalised to its own min..max. */
int dn_cli_visualize(int argc, char **argv);

#endif /* DENDRITE_TOOLS_REPORT_H */
