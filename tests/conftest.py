import os

# Set before torch is imported by any test module: one thread per pytest worker.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("EDULIT_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
