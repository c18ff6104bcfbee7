#!/usr/bin/env bash
# Builds .gpu/ (git-ignored): what benchmarks/gpu_eval.py needs on a GPU machine that has torch,
# torchvision and transformers but no network and no lighteval (Python 3.12 there).
#   .gpu/site   cp312 wheels unpacked: transformers 5.24 (mm_encoder_outputs; trimmed to the model
#               folders gpu_eval uses), lighteval 0.13 and its import-time dependencies
#   .gpu/stubs  import shims for packages that lighteval's dependencies import at import time and the
#               benchmark never calls (inspect_ai -> AWS S3 clients; pytablewriter -> chardet)
# Then, on the GPU machine:
#   export PYTHONPATH=$PWD/.gpu/site:$PWD/.gpu/stubs:$PWD/src HF_HUB_OFFLINE=1
#   python3 benchmarks/gpu_eval.py --arch qwen2_5_vl_7b --cases 8 --batch-size 16 --lighteval-batch-sizes 8,16,32
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
wheels=$(mktemp -d)
packages=(
  transformers==5.24.0 lighteval==0.13.0 datasets==5.2.0 evaluate==0.4.6 "xxhash<4"
  aenum==3.1.15 annotated-types antlr4-python3-runtime==4.13.2 dill multiprocess docstring-parser python-dotenv
  httpcore2 httpx2 ijson inspect-ai==0.3.285 jsonlines jsonpatch jsonpointer latex2sympy2-extended==1.0.6
  mbstrdecoder mmh3 nest-asyncio2 orjson pathvalidate pydantic==2.14.4 pydantic-core==2.50.5 pytablewriter
  python-multipart semver shortuuid starlette tabledata tcolorpy tenacity textual truststore typepy==1.3.5
  typing-inspection zipfile-zstd zstandard DataProperty colorlog termcolor==2.3.0 GitPython gitdb smmap
  nltk==3.9.1 platformdirs sniffio pytz
)
for p in "${packages[@]}"; do
  "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" "$p"
done
rm -rf .gpu/site .gpu/stubs
"$PIP" install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --target .gpu/site "$wheels"/*.whl
# stay under the 64 MiB a device call carries
(cd .gpu/site/transformers/models && for d in */; do case ${d%/} in
  auto|llava|qwen2_5_vl|qwen2_vl|clip|llama|qwen2|encoder_decoder|timm_backbone) ;; *) rm -rf "$d" ;; esac; done)
rm -rf .gpu/site/inspect_ai/binaries .gpu/site/inspect_ai/_view/www .gpu/site/inspect_ai/_view/dist \
  .gpu/site/inspect_ai/_view/inspect-openapi.json .gpu/site/zstandard/_cffi*.so .gpu/site/aenum/test.py .gpu/site/bin
rm -f .gpu/site/*.dist-info/RECORD
find .gpu/site -name "*.so" -exec strip --strip-unneeded {} \;
python3 - <<'EOF'
import os
doc = '"""GPU-benchmark import shim, never shipped: imported at import time by lighteval\'s dependencies, never called."""\n'
anything = '\n\ndef __getattr__(name):\n    if name.startswith("__"):\n        raise AttributeError(name)\n    value = type(name, (Exception,), {})\n    globals()[name] = value\n    return value\n'
modules = {"botocore": ["exceptions", "config"], "boto3": ["s3/__init__", "s3/transfer"],
           "aiobotocore": ["response", "session", "config", "httpsession"], "s3fs": ["core"]}
for package, subs in modules.items():
    for sub in ["__init__", *subs]:
        path = f".gpu/stubs/{package}/{sub}.py"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write(doc + anything)
os.makedirs(".gpu/stubs/chardet", exist_ok=True)
open(".gpu/stubs/chardet/__init__.py", "w").write(
    doc + '__version__ = "6.0.0"\n\n\ndef detect(data: bytes) -> dict:\n    return {"encoding": None, "confidence": 0.0, "language": None}\n'
)
EOF
du -sb .gpu
