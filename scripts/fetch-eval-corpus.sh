#!/usr/bin/env bash
# Fetches the natural-image corpus of `vouchsafe eval` (docs/HASHING.md §8) from Debian's packages into DIR
# (default: ./eval-corpus, which .gitignore keeps out of the tree). Nothing of it is committed.
#
#   scripts/fetch-eval-corpus.sh [DIR]
#   cargo run --release -- eval --corpus DIR/images --out DIR/report
#
# Each package is downloaded with `apt-get download` (no root needed, nothing is installed) and unpacked with
# `dpkg-deb -x` into DIR/images/<package>/. PyWavelets' sample images (python3-pywt, NumPy .npz files) are turned
# into PNG with Python's standard library. DIR/MANIFEST lists every package, its version and the SHA-256 of the .deb,
# so a report can name exactly what it measured.
#
# Left out on purpose, for an independent check: Debian's GNOME, MATE, Plasma and UKUI wallpapers, and the
# scikit-image, scikit-learn, mahotas and matplotlib sample images. The loader also refuses paths named after them.
set -euo pipefail

DIR=${1:-eval-corpus}
PACKAGES=(
  lomiri-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
  sway-backgrounds desktop-base
  debian-edu-artwork debian-edu-artwork-emerald debian-edu-artwork-homeworld debian-edu-artwork-softwaves
  debian-edu-artwork-spacefun debian-edu-artwork-buster
  mypaint-data-extras xfdesktop4-data lxqt-themes lxde-common fluxbox cinnamon-desktop-data
  python3-pywt
)

for tool in apt-get dpkg-deb python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-eval-corpus: $tool is needed (Debian or a derivative)" >&2; exit 2; }
done

mkdir -p "$DIR/debs" "$DIR/images"
DIR=$(cd "$DIR" && pwd)
cd "$DIR/debs"
for p in "${PACKAGES[@]}"; do
  if ! ls "${p}"_*.deb >/dev/null 2>&1; then
    apt-get download "$p" >/dev/null 2>&1 || { echo "fetch-eval-corpus: apt-get download $p failed (run apt-get update?)" >&2; exit 1; }
  fi
done

: > "$DIR/MANIFEST"
for p in "${PACKAGES[@]}"; do
  deb=$(ls "${p}"_*.deb | head -n1)
  version=$(dpkg-deb -f "$deb" Version)
  echo "$p $version $(sha256sum "$deb" | cut -d' ' -f1)" >> "$DIR/MANIFEST"
  rm -rf "$DIR/images/$p"
  mkdir -p "$DIR/images/$p"
  dpkg-deb -x "$deb" "$DIR/images/$p"
done

# PyWavelets' samples: 8-bit grayscale arrays in .npz (zip of .npy) -> PNG, standard library only.
python3 - "$DIR/images/python3-pywt" <<'PY'
import ast, pathlib, re, struct, sys, zipfile, zlib

def png(path, w, h, channels, rows):
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    colour = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\0" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(data)

root = pathlib.Path(sys.argv[1])
out = root / "png"
out.mkdir(exist_ok=True)
for npz in sorted(root.rglob("*.npz")):
    with zipfile.ZipFile(npz) as z:
        for name in z.namelist():
            b = z.read(name)
            if not b.startswith(b"\x93NUMPY"):
                continue
            hlen = struct.unpack("<H", b[8:10])[0] if b[6] == 1 else struct.unpack("<I", b[8:12])[0]
            off = 10 if b[6] == 1 else 12
            # Old NumPy wrote Python 2 longs ("512L").
            hdr = ast.literal_eval(re.sub(r"(\d)L", r"\1", b[off:off + hlen].decode("latin1")))
            shape, dtype = hdr["shape"], hdr["descr"]
            if dtype not in ("|u1", "<u1") or hdr.get("fortran_order") or len(shape) not in (2, 3):
                continue
            h, w = shape[0], shape[1]
            ch = shape[2] if len(shape) == 3 else 1
            if ch not in (1, 3) or min(w, h) < 256:
                continue
            px = b[off + hlen:]
            stride = w * ch
            rows = [px[y * stride:(y + 1) * stride] for y in range(h)]
            png(out / f"{npz.stem}.png", w, h, ch, rows)
            print(f"  {npz.name} -> png/{npz.stem}.png ({w}x{h})")
PY

count=$(find "$DIR/images" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) | wc -l)
echo "fetch-eval-corpus: ${#PACKAGES[@]} packages, $count image files under $DIR/images (MANIFEST: $DIR/MANIFEST)"
