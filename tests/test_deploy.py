"""deploy/kubernetes/ and the Dockerfile: valid, consistent with each other and with pdorgsync.

Every manifest is checked against the Kubernetes OpenAPI schemas bundled in
``kubernetes-validate`` (strict: unknown fields are errors; offline). Beyond
the schema: the env variables are real settings, the Secret and ConfigMaps the
Deployment reads exist with those keys, the ConfigMaps hold files pdorgsync
loads, selectors match the pods, and the image runs ``pdorgsync serve`` as a
non-root user without build tools.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from pdorgsync.loading import load_org, load_policies
from pdorgsync.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30"  # oldest Kubernetes we claim to support; schemas are bundled


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all((DEPLOY / name).read_text()) if d]


def _all() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in _docs(path.name):
            found[f"{doc['kind']}/{doc['metadata'].get('name', path.stem)}"] = doc
    return found


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


MANIFESTS = [
    "configmaps.yaml",
    "deployment.yaml",
    "service.yaml",
    "poddisruptionbudget.yaml",
    "secret.example.yaml",
]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_kubernetes(name: str) -> None:
    for doc in _docs(name):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_really_rejects_a_broken_deployment() -> None:
    """Guard against a validator that accepts anything (e.g. schemas missing offline)."""
    [deployment] = _docs("deployment.yaml")
    broken = copy.deepcopy(deployment)
    _pod(broken)["containers"][0]["livenessProbes"] = _pod(broken)["containers"][0].pop(
        "livenessProbe"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSION, strict=True)


def test_kustomization_lists_every_required_manifest() -> None:
    [kustomization] = _docs("kustomization.yaml")
    # The Secret is created by the operator (real values); the ServiceMonitor is optional.
    assert sorted(kustomization["resources"]) == sorted(
        n for n in MANIFESTS if n != "secret.example.yaml"
    )


def test_deployment_runs_two_replicas_with_probes_resources_and_no_root() -> None:
    [deployment] = _docs("deployment.yaml")
    pod = _pod(deployment)
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # SIGTERM → exit within 10 s (SPEC §5): the grace period must leave that room.
    assert pod["terminationGracePeriodSeconds"] > 10
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen = {e["name"]: e.get("value") for e in container["env"]}["PDORGSYNC_LISTEN"]
    assert listen == f"0.0.0.0:{ports['http']}"


def test_env_variables_are_real_settings_and_secrets_come_from_the_secret() -> None:
    """A typo in a variable name would be silently ignored by pdorgsync: catch it here."""
    [deployment] = _docs("deployment.yaml")
    [secret] = _docs("secret.example.yaml")
    pod = _pod(deployment)
    [container] = pod["containers"]
    known = {f"PDORGSYNC_{name.upper()}" for name in Settings.model_fields}
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= known, set(env) - known
    for name in ("PDORGSYNC_WEBHOOK_SECRETS", "PDORGSYNC_DATABASE_URL"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    assert env["PDORGSYNC_DATABASE_URL"]["valueFrom"]  # never a literal in the manifest
    assert "PDORGSYNC_API_TOKEN" not in env  # the token is a mounted file
    token_file = Path(env["PDORGSYNC_API_TOKEN_FILE"]["value"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    secret_volume = volumes[mounts[str(token_file.parent)]]["secret"]
    assert secret_volume["secretName"] == secret["metadata"]["name"]
    assert [i["path"] for i in secret_volume["items"]] == [token_file.name]
    assert secret_volume["items"][0]["key"] in secret["stringData"]


def test_configmaps_hold_an_org_and_policies_that_pdorgsync_loads(tmp_path: Path) -> None:
    """The mounted files are what the env variables name, and they validate."""
    [deployment] = _docs("deployment.yaml")
    pod = _pod(deployment)
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    maps = {d["metadata"]["name"]: d["data"] for d in _docs("configmaps.yaml")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    org_path = Path(env["PDORGSYNC_ORG_FILE"])
    org_map = maps[volumes[mounts[str(org_path.parent)]]["configMap"]["name"]]
    policy_map = maps[volumes[mounts[env["PDORGSYNC_POLICY_DIR"]]]["configMap"]["name"]]
    (tmp_path / org_path.name).write_text(org_map[org_path.name])
    (tmp_path / "policies").mkdir()
    for name, text in policy_map.items():
        (tmp_path / "policies" / name).write_text(text)
    org = load_org(tmp_path / org_path.name).org
    loaded = load_policies(tmp_path / "policies", org)
    assert len(loaded.files) == len(policy_map)
    assert loaded.policies  # the engagements the daemon will run


def test_configmaps_are_generated_from_the_examples() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "k8s_configmaps.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_service_pdb_and_servicemonitor_select_the_pods() -> None:
    [deployment] = _docs("deployment.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [service] = _docs("service.yaml")
    [pdb] = _docs("poddisruptionbudget.yaml")
    [monitor] = _docs("servicemonitor.yaml")
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    assert monitor["kind"] == "ServiceMonitor"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert "http" in service_ports
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_dockerfile_is_multi_stage_slim_non_root_and_serves() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM\s+", text, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2, "build tools must stay in a build stage"
    final = stages[-1]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.MULTILINE)
    assert base is not None
    assert "slim" in base.group(1)
    assert final.startswith("${PYTHON_IMAGE}")
    assert not re.search(r"apt-get install|build-essential|gcc|pip install", final)
    users = re.findall(r"^USER\s+(\S+)", final, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    [deployment] = _docs("deployment.yaml")
    assert users[-1].split(":")[0] == str(_pod(deployment)["securityContext"]["runAsUser"])
    assert re.search(r'^ENTRYPOINT \["pdorgsync", "serve"\]$', final, flags=re.MULTILINE)
    assert "COPY --from=build" in final
