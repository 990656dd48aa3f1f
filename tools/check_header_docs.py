#!/usr/bin/env python3
"""Lists the public declarations of include/dendrite.h that have no comment (the house rule: the public header
documents every function and type in one or two lines).  Standard library only.

    python3 tools/check_header_docs.py [HEADER]            undocumented declarations; exit 1 if there are any
    python3 tools/check_header_docs.py --strict [HEADER]   also group members that the group's comment names
    python3 tools/check_header_docs.py --list [HEADER]     every declaration and the comment that documents it
    python3 tools/check_header_docs.py --doxygen HEADER    the header as Doxygen should read it (Doxyfile filter)

A declaration (function prototype, typedef, struct, enum, macro) counts as documented when a comment ends on
the line directly above it or follows code on its first or last line.  The header also puts related
declarations under one comment with no blank line between them; a later member of such a group counts as
documented only when the comment names it ("reshape, permute and slice return views ..." covers dn_permute and
dn_slice; "Elementwise arithmetic ..." does not cover dn_sub), and not at all with --strict.  A constant
defined between a comment and a function counts as an aside when the comment names it (DN_PAD_SAME).  Section
rulers ("/* ---- ops */") and the file's opening comment document nothing.  Struct fields and enum values are
not checked (Doxygen reports those).

Doxygen reads only /** */ comments, and the header is written with plain /* */ ones so that it reads as ordinary
C.  --doxygen rewrites it on the way in, keeping every line where it is: a comment above a declaration becomes
/** */, a comment after code becomes /**< */, the opening comment becomes the file's description, and a group
member (or a function below a constant its comment names) gets a copy of that comment, /** */ at the start of
its first line.
"""
import re
import sys

IDENT = r"[A-Za-z_]\w*"


class Line:
    """One physical line: its code with comments removed, and where comments start and end on it."""

    def __init__(self, text):
        self.text = text
        self.code = ""
        self.comment_starts = []  # column of each "/*" that opens a comment on this line
        self.comment_ends = False  # a comment closes on this line
        self.in_comment = False  # the line is (partly) inside a comment that began earlier


def scan(lines):
    """Splits each line into code and comment without being fooled by string literals."""
    out = []
    in_comment = False
    for text in lines:
        ln = Line(text)
        ln.in_comment = in_comment
        code = []
        i, n, quote = 0, len(text), None
        while i < n:
            if in_comment:
                j = text.find("*/", i)
                if j < 0:
                    i = n
                else:
                    in_comment = False
                    ln.comment_ends = True
                    i = j + 2
                continue
            c = text[i]
            if quote:
                code.append(c)
                if c == "\\" and i + 1 < n:
                    code.append(text[i + 1])
                    i += 1
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
                code.append(c)
            elif text.startswith("/*", i):
                ln.comment_starts.append(i)
                in_comment = True
                i += 2
                continue
            elif text.startswith("//", i):
                ln.comment_starts.append(i)
                ln.comment_ends = True
                break
            else:
                code.append(c)
            i += 1
        ln.code = "".join(code).rstrip()
        out.append(ln)
    return out


class Decl:
    def __init__(self, kind, name, first, last):
        self.kind, self.name, self.first, self.last = kind, name, first, last  # 0-based line numbers
        self.doc = None  # "above", "trailing", "group" or None
        self.doc_first = self.doc_last = None  # lines of the comment that documents it
        self.aside = False  # that comment is above a constant defined right above this declaration


def comment_block_above(lines, i):
    """If a comment that stands on lines of its own ends on line i-1, returns its (first, last) line."""
    j = i - 1
    if j < 0 or not lines[j].comment_ends or lines[j].code.strip():
        return None
    k = j
    while k >= 0 and not lines[k].comment_starts:
        k -= 1
    if k < 0 or lines[k].code.strip():  # code before it: the tail of a trailing comment
        return None
    return k, j


def comment_text(lines, first, last):
    text = "\n".join(lines[k].text for k in range(first, last + 1))
    body = text[text.find("/*") + 2:text.rfind("*/")] if "/*" in text else text.lstrip()[2:]
    words = []
    for part in body.split("\n"):
        part = part.strip()
        if part.startswith("*"):
            part = part[1:].strip()
        words.append(part)
    return " ".join(w for w in words if w)


def is_ruler(text):
    """A section ruler, "/* ------ ops */", heads a part of the header and documents nothing."""
    return re.match(r"\s*/\*\s*-{4,}", text) is not None


def escape_tags(text):
    """Escapes each < that starts something tag-like: "layers.<i>.weight" is text, not HTML."""
    return re.sub(r"<(?=/?[A-Za-z])", r"\\<", text)


def parse(lines):
    """Finds the file-scope public declarations, in order."""
    decls = []
    depth = 0  # braces of struct and enum bodies
    stmt, stmt_first = "", None
    skip = 0  # inside #ifdef __cplusplus ... #endif
    cond = []  # stack of "skip this conditional" flags
    seen_macros = set()
    for i, ln in enumerate(lines):
        code = ln.code.strip()
        if code.startswith("#"):
            directive = code[1:].strip()
            if directive.startswith(("if", "ifdef", "ifndef")):
                flag = "__cplusplus" in directive
                cond.append(flag)
                skip += flag
            elif directive.startswith("endif") and cond:
                skip -= cond.pop()
            elif directive.startswith("define") and not skip and depth == 0:
                m = re.match(r"define\s+(" + IDENT + ")", directive)
                name = m.group(1) if m else ""
                guard = name.endswith("_H")
                if name and not guard and name not in seen_macros:
                    seen_macros.add(name)
                    decls.append(Decl("macro", name, i, i))
            continue
        if skip or not code:
            continue
        if stmt_first is None:
            stmt_first = i
        stmt += " " + code
        depth += code.count("{") - code.count("}")
        if depth == 0 and code.endswith(";"):
            decls.append(classify(stmt.strip(), stmt_first, i))
            stmt, stmt_first = "", None
    return decls


def classify(stmt, first, last):
    flat = re.sub(r"\{.*\}", "{}", stmt, flags=re.S)
    if flat.startswith("typedef"):
        m = re.search(r"\(\s*\*\s*(" + IDENT + r")\s*\)", flat)  # function pointer type
        if m:
            return Decl("typedef", m.group(1), first, last)
        m = re.search(r"(" + IDENT + r")\s*;$", flat)
        return Decl("typedef", m.group(1) if m else flat, first, last)
    m = re.match(r"(struct|enum|union)\s+(" + IDENT + r")?\s*\{\}\s*;$", flat)
    if m:
        if m.group(2):
            return Decl(m.group(1), m.group(2), first, last)
        names = re.findall(r"\b(" + IDENT + r")\s*(?:=[^,}]*)?[,}]", stmt)
        return Decl("enum", "enum {" + ", ".join(names) + "}", first, last)
    m = re.search(r"(" + IDENT + r")\s*\(", flat)
    if m:
        return Decl("function", m.group(1), first, last)
    m = re.search(r"(" + IDENT + r")\s*(\[[^\]]*\])?\s*;$", flat)
    return Decl("variable", m.group(1) if m else flat, first, last)


def attach_docs(lines, decls, strict):
    """Decides for each declaration which comment documents it."""
    prev = None
    for d in decls:
        above = comment_block_above(lines, d.first)
        if above and is_ruler(lines[above[0]].text):
            above = None
        if above and above[0] == 0:
            above = None  # the file's opening comment
        trailing = any(lines[k].comment_starts and lines[k].code.strip() for k in (d.first, d.last))
        if not above and prev and prev.kind == "macro" and prev.last == d.first - 1 and prev.doc == "above":
            # a constant defined between a comment and the function it belongs to ("... DN_PAD_SAME keeps H and W")
            if names(comment_text(lines, prev.doc_first, prev.doc_last), prev.name):
                above = prev.doc_first, prev.doc_last
                d.aside = True
        if above:
            d.doc, (d.doc_first, d.doc_last) = "above", above
        elif trailing:
            d.doc = "trailing"
        # a group: this declaration starts right below the previous one, which has (or inherits) a comment above;
        # that comment documents it too if it names it ("reshape, permute and slice return views ...")
        if prev and prev.last == d.first - 1 and not above and prev.doc_first is not None:
            d.doc_first, d.doc_last = prev.doc_first, prev.doc_last
            if not trailing and not strict and names(comment_text(lines, d.doc_first, d.doc_last), d.name):
                d.doc = "group"
        prev = d


def names(text, name):
    """Whether a comment mentions a declaration: its name, or its name without the dn_ prefix, as a word."""
    short = name[3:] if name.lower().startswith("dn_") else name
    return any(re.search(r"(?<![\w.])" + re.escape(n) + r"(?!\w)", text) for n in (name, short) if n)


def report(path, strict, listing):
    with open(path, encoding="utf-8") as f:
        lines = scan(f.read().split("\n"))
    decls = parse(lines)
    attach_docs(lines, decls, strict)
    missing = [d for d in decls if d.doc is None]
    if listing:
        for d in decls:
            how = d.doc or "UNDOCUMENTED"
            text = comment_text(lines, d.doc_first, d.doc_last) if d.doc_first is not None else ""
            if d.doc == "trailing":
                k = d.last if lines[d.last].comment_starts else d.first
                text = comment_text(lines, k, k)
            print(f"{path}:{d.first + 1}: {d.kind} {d.name}: {how}: {text[:100]}")
    for d in missing:
        print(f"{path}:{d.first + 1}: {d.kind} {d.name} has no comment")
    grouped = sum(d.doc == "group" for d in decls)
    print(f"{len(decls)} public declarations, {len(missing)} without a comment"
          + ("" if strict else f" ({grouped} share the comment of a group)"))
    return 1 if missing else 0


def doxygen_filter(path):
    """Prints the header with its comments made visible to Doxygen; the line count does not change."""
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    lines = scan(raw)
    decls = parse(lines)
    attach_docs(lines, decls, strict=False)
    out = list(raw)
    # the opening comment describes the file: \file with no name means this one
    if lines and lines[0].comment_starts == [0]:
        if lines[0].comment_ends:
            out[0] = "/**" + out[0][2:].replace("*/", "\\file */", 1)
        else:
            out[0] = "/**" + out[0][2:] + " \\file"
    for i, ln in enumerate(lines):
        if ln.comment_starts or ln.in_comment:
            col = ln.comment_starts[0] if ln.comment_starts and ln.code.strip() else 0
            out[i] = out[i][:col] + escape_tags(out[i][col:])
        if i == 0 or not ln.comment_starts or ln.code.startswith("#endif"):
            continue
        col = ln.comment_starts[0]
        if ln.text.startswith("//", col) or is_ruler(ln.text):
            continue
        marker = "/**<" if ln.code.strip() else "/**"
        out[i] = out[i][:col] + marker + out[i][col + 2:]
    for d in decls:
        if d.doc == "group" or d.aside:
            text = escape_tags(comment_text(lines, d.doc_first, d.doc_last))
            indent = len(out[d.first]) - len(out[d.first].lstrip())
            out[d.first] = out[d.first][:indent] + "/** " + text + " */ " + out[d.first][indent:]
    sys.stdout.write("\n".join(out))


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    unknown = flags - {"--strict", "--list", "--doxygen", "--help"}
    if unknown or "--help" in flags or len(args) > 1:
        print(__doc__.strip(), file=sys.stderr if unknown or len(args) > 1 else sys.stdout)
        return 2 if unknown or len(args) > 1 else 0
    path = args[0] if args else "include/dendrite.h"
    if "--doxygen" in flags:
        doxygen_filter(path)
        return 0
    return report(path, "--strict" in flags, "--list" in flags)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
