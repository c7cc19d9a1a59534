#!/usr/bin/env bash
# Install a portable llama-cpp-python into a virtual environment.
#
# llama-cpp-python compiles llama.cpp with -march=native by default. A library built that way on a CPU that
# reports AMX or AVX-512 dies with "Illegal instruction" on a machine (or a VM) that does not enable them, and pip
# caches the wheel, so every later venv on the machine reuses it. This script builds the wheel once with the
# instruction sets named explicitly (x86-64 with AVX2/FMA/F16C/BMI2, which every x86-64 CPU since 2015 has), keeps
# it in a folder keyed by the package version and the flags, and installs that exact file. A wheel built with other
# flags -- in pip's cache or anywhere else -- is never picked up: the build bypasses pip's cache (--no-cache-dir,
# --no-binary) and the install names the file.
#
# usage: tools/llama_wheel.sh PYTHON            (the venv's python)
# env:   AUDIT_WHEEL_DIR   where built wheels are kept (default ~/.cache/audit/wheels)
#        AUDIT_LLAMA_FLAGS extra CMake flags (changing them changes the key, so a new wheel is built)
set -euo pipefail
PY=${1:?usage: tools/llama_wheel.sh PYTHON}
VERSION=0.3.36
FLAGS="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_BACKEND_DL=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF ${AUDIT_LLAMA_FLAGS:-}"
PYTAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
KEY=$(printf '%s|%s|%s|%s' "$VERSION" "$FLAGS" "$PYTAG" "$(uname -m)" | sha256sum | cut -c1-16)
DIR=${AUDIT_WHEEL_DIR:-$HOME/.cache/audit/wheels}/llama-cpp-python-$VERSION-$KEY
STAMP=$("$PY" -c 'import sys; print(sys.prefix)')/.llama-portable-$KEY

if [ -f "$STAMP" ]; then exit 0; fi
wheel=$(ls "$DIR"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $VERSION portably (no -march=native; about 8-10 minutes on 2 cores, once per machine)" >&2
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/llama-wheel.XXXXXX")
  CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) FORCE_CMAKE=1 \
    "$PY" -m pip wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$VERSION" -w "$tmp"
  mkdir -p "$DIR"
  printf '%s\n' "$FLAGS" > "$tmp/FLAGS"
  mv "$tmp"/* "$DIR"/ && rmdir "$tmp"
  wheel=$(ls "$DIR"/llama_cpp_python-"$VERSION"-*.whl | head -1)
fi
# --force-reinstall replaces a natively built copy already in the venv; extras bring the server's dependencies.
"$PY" -m pip install -q --force-reinstall --no-deps "$wheel"
"$PY" -m pip install -q "llama-cpp-python[server] @ file://$wheel"
touch "$STAMP"
