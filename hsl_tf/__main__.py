"""``python3 -m hsl_tf <command> [flags]``: the commands of :mod:`hsl_tf_cli` without their scripts.

  python3 -m hsl_tf train --flagfile=configs/tiny.flags --workdir=runs/tiny     (= hsl-train ...)
  python3 -m hsl_tf                                                           (lists the commands)
"""

import importlib
import sys

from hsl_tf.commands import COMMANDS, console_name


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    word = argv[1] if len(argv) > 1 else ""
    name = word.replace("-", "_")
    if name not in COMMANDS:
        usage = ("usage: python3 -m hsl_tf <command> [flags] (<command> --help: its flags); commands: "
                 + ", ".join(c.replace("_", "-") for c in COMMANDS))
        asked = word in ("-h", "--help")
        sys.stderr.write(("" if asked or not word else f"hsl_tf: error: unknown command {word!r}\n") + usage + "\n")
        return 0 if asked else 2
    sys.argv = [console_name(name)] + argv[2:]  # messages name the command as its script does
    importlib.import_module(f"hsl_tf_cli.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
