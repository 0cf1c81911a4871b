# The ZSSR web service: gunicorn, one worker process with threads, on the CPU by default.
# Build: docker build -t zssr .        Run: docker run -p 8000:8000 zssr
# GPU:   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 -t zssr-gpu .
#        docker run --gpus all -p 8000:8000 zssr-gpu
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/zssr

# Requirements first, so that code changes do not reinstall them. The pinned torch version is taken from
# TORCH_INDEX when that index has it: the CPU build by default (a fraction of the CUDA build's size).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
RUN sed '/^# Tests/,$d' requirements.txt > requirements-runtime.txt \
    && pip install --extra-index-url "${TORCH_INDEX}" -r requirements-runtime.txt

RUN useradd --create-home --uid 10001 zssr
COPY config.json gunicorn.conf.py main-flask.py ./
COPY app ./app
COPY templates ./templates
COPY static ./static

USER zssr
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
