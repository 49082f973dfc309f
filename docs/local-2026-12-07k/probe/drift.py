"""Parse every `andactl ...` command quoted in the docs with the real CLI (no run)."""
import glob, re, shlex, sys
import click
from andactl.cli.main import cli

files = sys.argv[1:]
def commands(text):
    text = re.sub(r"\\\n\s*", " ", text)
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r"(?:^|[\s`(;|&$])andactl((?:\s+[^`|;&#\n)]*)?)", line):
            yield lineno, "andactl" + m.group(1)

bad = 0; seen = 0
import os
for f in files:
    if os.path.isdir(f): continue
    for lineno, cmdline in commands(open(f, encoding="utf-8").read()):
        try:
            toks = shlex.split(cmdline, comments=False)
        except ValueError:
            continue
        toks = toks[1:]
        while toks and toks[0] in ("-q", "-v", "-vv", "--quiet", "--verbose"):
            toks = toks[1:]
        if not toks or toks[0].startswith("-") or toks[0] not in cli.commands:
            continue
        sub = cli.commands[toks[0]]
        args = [t for t in toks[1:] if t not in ("...", "…")]
        # stop at shell redirection
        cut = [i for i, t in enumerate(args) if t.startswith((">", "2>", "<")) or t in (">", "2>&1")]
        if cut: args = args[:cut[0]]
        seen += 1
        try:
            with click.Context(cli) as parent:
                sub.make_context(toks[0], list(args), parent=parent)
        except click.exceptions.Exit:
            pass
        except click.UsageError as e:
            msg = e.format_message()
            if re.search(r"does not exist|Missing argument|Missing option|requires an argument|unexpected extra|is not a valid (float|integer)", msg):
                continue
            bad += 1
            print(f"{f}:{lineno}: {cmdline.strip()[:160]}\n    -> {msg}")
        except click.BadParameter as e:
            msg = e.format_message()
            if re.search(r"does not exist|Missing argument|Missing option|requires an argument|unexpected extra|is not a valid (float|integer)", msg): continue
            bad += 1
            print(f"{f}:{lineno}: {cmdline.strip()[:160]}\n    -> {msg}")
print(f"{seen} commands parsed, {bad} refused", file=sys.stderr)
