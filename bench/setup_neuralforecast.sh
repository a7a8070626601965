#!/usr/bin/env bash
# Create bench/.venv-nf, the separate environment with neuralforecast that bench/train_speed.py
# runs its baseline in. Safe to re-run: an existing environment is reused and brought up to date.
#
#   bash bench/setup_neuralforecast.sh            # uses python3.11 from PATH
#   PYTHON=/path/to/python3.11 bash bench/setup_neuralforecast.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-nf"
python="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install -r "$here/requirements-neuralforecast.txt"
"$venv/bin/python" -c "import neuralforecast, torch; print('neuralforecast', neuralforecast.__version__, 'torch', torch.__version__)"
echo "ready: $venv"
