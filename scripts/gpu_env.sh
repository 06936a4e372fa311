# Sourced by the GPU scripts: on a lent machine with no network, install the carried wheels and the
# vocabulary-pruned text encoder (scripts/carry_text_encoder.py) from .carry/; elsewhere nothing.
SITE=${SITE:-/tmp/site}
if [ -d .carry/whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .carry/whl/*.whl || exit 1
  python3 scripts/carry_text_encoder.py .carry/minilm --unpack "$SITE" || exit 1
fi
export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# The reelforge CLI from the source tree, as a command line (so `timeout` can run it too) and as `rf`.
RF=(python3 -c "import sys; from reelforge.cli import main; sys.argv = ['reelforge'] + sys.argv[1:]; main()")
rf() { "${RF[@]}" "$@"; }
# half_copy SRC DST: weights as fp16 safetensors, written atomically, with their JSON config beside them.
half_copy() { python3 -c "import sys; from pathlib import Path; from reelforge.training.export import half_copy
half_copy(Path(sys.argv[1]), Path(sys.argv[2]))" "$1" "$2"; }
