#!/usr/bin/env bash
# Installs (idempotently) the Python readers the tests use to read the tables back as
# Databricks would: delta-rs' Python `deltalake` and `polars`. Prints the interpreter path.
set -euo pipefail
venv="${PINSTREAM_VENV:-$HOME/.cache/pinstream-venv}"
stamp="$venv/.pinstream-requirements"
wanted="deltalake==1.6.6 polars==1.35.2 pyarrow==22.0.0"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check $wanted >&2
  echo "$wanted" > "$stamp"
fi
echo "$venv/bin/python"
