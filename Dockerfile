# ALVA dashboard image, suitable for a Hugging Face Space (Docker SDK) or any container host.
#   docker build -t alva . && docker run -p 8501:8501 alva
# The Space's README front matter needs `sdk: docker` and `app_port: 8501`.
# Everything the app shows comes from the shipped assets/ (embeddings, agents, report); no network is needed at run time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# curl for the health check only
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*

# Hugging Face Spaces run the container as uid 1000
RUN useradd -m -u 1000 user
USER user
# NUMBA_CACHE_DIR: numba (umap-learn) needs a writable cache dir as a non-root user (lmcinnes/umap#715).
# ALVA_CACHE_DIR: the diskcache store for anything not shipped in assets/report (computed on first use).
# One BLAS/OpenMP thread: the app only does small (108-item) matrix work.
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    NUMBA_CACHE_DIR=/home/user/.cache/numba \
    ALVA_CACHE_DIR=/home/user/.cache/alva \
    MPLCONFIGDIR=/home/user/.cache/matplotlib \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1
WORKDIR /home/user/app

# CPU-only torch first (the Agent page runs the shipped agents on the CPU); then the app's requirements
COPY --chown=user requirements.txt .
RUN pip install --user --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
    && pip install --user -r requirements.txt \
    && mkdir -p "$NUMBA_CACHE_DIR" "$ALVA_CACHE_DIR"

COPY --chown=user . .

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl --fail http://localhost:8501/_stcore/health || exit 1
ENTRYPOINT ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
