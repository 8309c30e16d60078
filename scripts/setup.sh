#!/usr/bin/env bash
# Idempotent set-up on a Debian machine: the Debian packages the pipeline reads (WordNet, Fashion-MNIST,
# Open Clip Art) and a virtual environment at .venv with imagenot installed editable with its test extras.
# A rerun with nothing changed only checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# libcairo2: cairosvg renders the @iconify/json SVGs
DEB_PKGS=(wordnet-base wordnet-sense-index dataset-fashion-mnist openclipart-png openclipart-svg tesseract-ocr
          libcairo2)
missing=()
for p in "${DEB_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# an npm client fetches @iconify/json (below): Debian's, unless the machine already has one (e.g. with nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[setup] installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# @iconify/json (open icon sets, a second contrast corpus: `imagenot mine --corpus iconify`), the version
# pinned in src/imagenot/mining/iconify.py, unpacked under .venv/share (not in the repository): 104 MB
# download, 465 MB unpacked, about 10 s. Skipped when that version is already there.
ICONIFY_VERSION=$(sed -n 's/^VERSION = "\(.*\)"$/\1/p' src/imagenot/mining/iconify.py)
ICONIFY_SHA1=393e49fdf380f1c633c460af60bf0527191a66a7  # the registry's dist.shasum of that version
iconify_dir=.venv/share/iconify-json-$ICONIFY_VERSION
if [ ! -f "$iconify_dir/package.json" ]; then
  echo "[setup] fetching @iconify/json@$ICONIFY_VERSION from npm"
  mkdir -p .venv/share
  tmp=$(mktemp -d .venv/share/.iconify.XXXXXX)
  (cd "$tmp" && npm pack --silent "@iconify/json@$ICONIFY_VERSION" >/dev/null)
  echo "$ICONIFY_SHA1  $tmp/iconify-json-$ICONIFY_VERSION.tgz" | sha1sum -c --quiet
  mkdir -p "$tmp/pkg"
  tar xzf "$tmp/iconify-json-$ICONIFY_VERSION.tgz" -C "$tmp/pkg" --strip-components=1
  rm -rf "$iconify_dir" && mv "$tmp/pkg" "$iconify_dir" && rm -rf "$tmp"
fi

stamp=.venv/.imagenot-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/imagenot ]; then
  exit 0
fi
echo "[setup] creating .venv and installing imagenot (first run: several minutes, torch is large)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch 2.14.1 / torchvision 0.29.1 are what these machines serve from local disk; elsewhere any torch>=2.9.
.venv/bin/python -m pip install -q -e '.[test]'
# animal-mnist's own dependency list pulls TensorFlow, which imagenot does not need: it reads the pickles.
.venv/bin/python -m pip install -q --no-deps 'animal-mnist>=0.4'
echo "$want" > "$stamp"
echo "[setup] done"
