#!/usr/bin/env bash
# Regenerate constraints.txt (the versions the suite is tested with) from a venv where
#   pip install torch==2.13.0 && pip install -e ".[train]"
# was run and the tests pass:
#   . .venv/bin/activate && scripts/refresh-constraints.sh
# Installs then use it with `pip install -c constraints.txt ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Versions the suite is tested with; refresh with scripts/refresh-constraints.sh."
  echo "# torch is pinned without its local build tag (+cpu, +cu121, ...) so that the same file"
  echo "# constrains a CPU install and a CUDA one: install the torch build for your platform first."
  # --exclude-editable leaves out selfaware itself; the sed drops torch's local version label.
  python -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/' | LC_ALL=C sort -f
} > constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned packages"
