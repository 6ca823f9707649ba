"""DDOME plumbing: the federation folder a Flower node reads, its error messages, and the CLI."""
import json

import pytest
import torch

from edulit.cli import main
from edulit.ddome.federation import FederationData, prepare_federation
from edulit.ddome.moe import DDOMEConfig

SMALL = DDOMEConfig(dataset="digits", n_clients=12, n_experts=3, top_k=2, labels_per_client=4, n_test_clients=3,
                    test_client_size=60, public_size=150, public_valid_size=150, anchors_per_round=2,
                    normals_per_round=3, rounds=3, batch_size=32, gate_hidden=32, expert_hidden=32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("federation")
    data = prepare_federation(SMALL, seed=0)
    data.save(folder)
    return data, folder


def test_node_reads_only_client_files(saved):
    data, folder = saved
    node = FederationData.load(folder)
    assert node.x_train is None
    assert torch.equal(node.client(5).x, data.client(5).x)
    assert torch.equal(node.client(5).embeddings, data.client(5).embeddings)


def test_edited_manifest_rejected(saved, tmp_path):
    _, folder = saved
    for name in ("config.json", "manifest.json", "common_expert.pt"):
        (tmp_path/name).write_bytes((folder/name).read_bytes())
    manifest = json.loads((tmp_path/"manifest.json").read_text())
    manifest["clients"][3]["indices"] = manifest["clients"][3]["indices"][:-1]
    (tmp_path/"manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="checksum mismatch"):
        FederationData.load(tmp_path)


def test_missing_file_named(saved, tmp_path):
    _, folder = saved
    (tmp_path/"config.json").write_bytes((folder/"config.json").read_bytes())
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        FederationData.load(tmp_path)


def test_missing_client_file_named(saved, tmp_path):
    _, folder = saved
    for name in ("config.json", "manifest.json", "common_expert.pt"):
        (tmp_path/name).write_bytes((folder/name).read_bytes())
    (tmp_path/"clients").mkdir()
    with pytest.raises(FileNotFoundError, match="client_4.pt"):
        FederationData.load(tmp_path).client(4)


def test_invalid_config_values():
    with pytest.raises(ValueError, match="DDOMEConfig.selection"):
        DDOMEConfig(selection="max")
    with pytest.raises(ValueError, match="n_clients=6"):
        DDOMEConfig(n_clients=6, n_experts=5, normals_per_round=5)
    with pytest.raises(ValueError, match="Unknown DDOMEConfig keys"):
        DDOMEConfig.from_dict({"rounds": 3, "n_rounds": 3})


def test_hosted_clients_rejects_bad_partition(saved):
    pytest.importorskip("flwr")
    from edulit.ddome.flower import hosted_clients
    data, _ = saved
    assert hosted_clients(data, 0, 3) == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="partition-id=3"):
        hosted_clients(data, 3, 3)


def test_cli_lists_ddome(capsys):
    assert main(["list"]) == 0
    assert "ddome" in capsys.readouterr().out


def test_cli_runs_ddome(tmp_path, capsys):
    code = main(["run", "ddome", "--seeds", "0", "--out", str(tmp_path), "--set", "rounds=2", "--set", "eval_every=1",
                 "--set", 'arms=["common_expert", "fedavg_common", "ddome"]'])
    assert code == 0
    record = json.loads((tmp_path/"ddome.json").read_text())
    assert set(record["summary"]) == {"common_expert", "fedavg_common", "ddome"}
    assert (tmp_path/"ddome_quick.png").exists()


def test_cli_rejects_unknown_key(tmp_path, capsys):
    assert main(["run", "ddome", "--out", str(tmp_path), "--set", "n_rounds=2"]) == 2
    assert "n_rounds" in capsys.readouterr().err
