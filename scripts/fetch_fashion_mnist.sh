#!/usr/bin/env bash
# Put Fashion-MNIST under <root>/FashionMNIST/raw/ (torchvision's layout) with no internet
# beyond Debian's package archive: the data ships as the package dataset-fashion-mnist.
# Works without root: the package lists then go to a private folder.
set -euo pipefail
root=${1:-data/raw}
raw="$root/FashionMNIST/raw"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
have_all=true
for f in "${files[@]}"; do [ -s "$raw/$f" ] || have_all=false; done
if $have_all; then echo "Fashion-MNIST already in $raw"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_opts=()
if [ "$(id -u)" != 0 ]; then  # no root: keep package lists in a folder we own
  mkdir -p "$work/lists/partial"
  apt_opts=(-o "Dir::State::Lists=$work/lists")
fi
download() { (cd "$work" && apt-get "${apt_opts[@]}" download dataset-fashion-mnist) >/dev/null 2>&1; }
if ! download; then
  echo "fetching Debian's package lists (apt-get update)..."
  apt-get "${apt_opts[@]}" update >/dev/null
  download || { echo "error: could not download the Debian package dataset-fashion-mnist" >&2; exit 1; }
fi
dpkg -x "$work"/dataset-fashion-mnist_*.deb "$work/x"
mkdir -p "$raw"
for f in "${files[@]}"; do
  gunzip -c "$work/x/usr/share/datasets/fashion-mnist/$f.gz" > "$raw/$f.tmp"
  mv "$raw/$f.tmp" "$raw/$f"
done
echo "Fashion-MNIST written to $raw"
