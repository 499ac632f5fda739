#!/usr/bin/env python3
"""Renders Parley's kustomize manifests and checks them, offline.

For the base (deploy/k8s) and each overlay (deploy/overlays/*):
1. renders the kustomization (below: the part of kustomize the files use, in Python, since
   neither kustomize nor kubectl is a package on npm, PyPI or Debian here; where `kubectl`
   is on PATH its own `kubectl kustomize` output must be the same objects, so this renderer
   is checked against the real one);
2. validates every object against the Kubernetes OpenAPI schemas bundled in the
   `kubernetes-validate` package (strict: an unknown field is an error), for the oldest and
   the newest Kubernetes version Parley supports;
3. checks the rules the schemas cannot express (policy_problems below).

`--self-test` breaks the rendered base in one way at a time and fails unless each break is
reported, so a checker that passes everything cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import yaml

# kubernetes-validate reads and parses its schema files (the shared definitions are megabytes)
# at every call; the checks validate each object against the same few, so keep them parsed.
# The parsed schemas are only read, never changed, so sharing them is safe.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)

REPO = Path(__file__).resolve().parent.parent
# The oldest version the manifests need (gRPC probes are GA from 1.27; 1.29 is the oldest
# still maintained by the big providers) and the newest the pinned kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")

# What is rendered, and the pods each rendering lets reach outside the cluster: pod name ->
# the ports it may reach there (None: any port). The base uses a PostgreSQL outside the
# cluster (its address is per cluster); every overlay in deploy/overlays is held to the
# stricter rule (the self-contained one runs its own PostgreSQL).
TARGETS = {
    "deploy/k8s": {"llm-service": None, "user-service": {5432}, "chat-service": {5432}},
    **{f"deploy/overlays/{overlay.name}": {"llm-service": None}
       for overlay in sorted((REPO / "deploy/overlays").iterdir())
       if (overlay / "kustomization.yaml").is_file()},
}
BALANCED_SERVICES = ("user-service", "chat-service", "llm-service")
DISRUPTION_BUDGETED = ("gateway", "chat-service", "llm-service", "user-service")
AUTOSCALED = ("gateway", "chat-service", "llm-service")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "CustomResourceDefinition"}


class RenderError(Exception):
    pass


# Names of the ConfigMaps render() generated (their rendered names end in a content hash).
GENERATED_NAMES: set[str] = set()


# ---------------------------------------------------------------------------------------------
# Rendering


def render(directory: Path) -> list[dict]:
    """The objects `kustomize build directory` gives, for the fields our kustomizations use."""
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(path.read_text()) or {}
    supported = {"apiVersion", "kind", "namespace", "resources", "labels", "images",
                 "configMapGenerator", "patches"}
    unsupported = sorted(set(kustomization) - supported)
    if unsupported:
        raise RenderError(f"{path}: this renderer does not support {', '.join(unsupported)} "
                          "(tools/check_manifests.py renders a subset of kustomize)")

    objects: list[dict] = []
    for resource in kustomization.get("resources", []):
        target = (directory / resource).resolve()
        if target.is_dir():
            objects.extend(render(target))
        elif target.is_file():
            objects.extend(doc for doc in yaml.safe_load_all(target.read_text()) if doc)
        else:
            raise RenderError(f"{path}: resource {resource} does not exist")

    renamed: dict[str, str] = {}
    for generator in kustomization.get("configMapGenerator", []):
        unknown = set(generator) - {"name", "literals"}
        if unknown:
            raise RenderError(f"{path}: configMapGenerator {generator.get('name')}: "
                              f"unsupported {', '.join(sorted(unknown))}")
        data = {}
        for literal in generator.get("literals", []):
            key, sep, value = literal.partition("=")
            if not sep:
                raise RenderError(f"{path}: literal {literal!r} has no '='")
            data[key] = value
        name = generator["name"]
        hashed = f"{name}-{config_map_hash(name, data)}"
        renamed[name] = hashed
        GENERATED_NAMES.add(name)
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": hashed}, "data": data})
    for obj in objects:
        rename_config_map_refs(obj, renamed)

    for patch in kustomization.get("patches", []):
        apply_patch(objects, patch, directory)

    for image in kustomization.get("images", []):
        for container in containers_of_all(objects):
            name, tag = split_image(container.get("image", ""))
            if name == image["name"]:
                new_name = image.get("newName", name)
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name

    namespace = kustomization.get("namespace")
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if namespace and obj.get("kind") not in CLUSTER_SCOPED:
            metadata["namespace"] = namespace
        for entry in kustomization.get("labels", []):
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                raise RenderError(f"{path}: labels with includeSelectors/includeTemplates "
                                  "are not supported")
            metadata.setdefault("labels", {}).update(entry.get("pairs", {}))
    return objects


def config_map_hash(name: str, data: dict) -> str:
    """A name suffix that changes with the content, as kustomize's does (so a changed ConfigMap
    rolls the pods that use it), in kustomize's alphabet (hex with 0 1 3 a e spelled g h k m
    t). Not the same digits as kustomize's: the comparison with kubectl masks the suffix."""
    encoded = json.dumps({"data": data, "kind": "ConfigMap", "name": name},
                         separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def rename_config_map_refs(node, renamed: dict[str, str]) -> None:
    """Points configMapRef, configMapKeyRef and configMap volumes at the generated names."""
    if isinstance(node, dict):
        for key in ("configMapRef", "configMapKeyRef", "configMap"):
            ref = node.get(key)
            if isinstance(ref, dict) and ref.get("name") in renamed:
                ref["name"] = renamed[ref["name"]]
        for value in node.values():
            rename_config_map_refs(value, renamed)
    elif isinstance(node, list):
        for value in node:
            rename_config_map_refs(value, renamed)


def apply_patch(objects: list[dict], patch: dict, directory: Path) -> None:
    if set(patch) - {"path", "target"} or "path" not in patch:
        raise RenderError(f"{directory}: only patches with a path (and a target) are supported")
    body = yaml.safe_load((directory / patch["path"]).read_text())
    target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [o for o in objects
               if o.get("kind") == target.get("kind", o.get("kind"))
               and o["metadata"]["name"] == target.get("name", o["metadata"]["name"])]
    if not matched:
        raise RenderError(f"{directory}: patch {patch['path']} matches no object")
    for obj in matched:
        merge(obj, {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")},
              f"{directory / patch['path']}")


# Lists kustomize merges item by item (by name) in a strategic merge patch; this renderer only
# replaces lists, so a patch that reaches into one of these is refused rather than misrendered.
MERGED_LISTS = {"containers", "initContainers", "env", "envFrom", "volumes", "volumeMounts",
                "ports", "imagePullSecrets"}


def merge(into: dict, patch: dict, where: str) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value, where)
        elif isinstance(value, list) and key in MERGED_LISTS:
            raise RenderError(f"{where}: patching the list {key} is not supported")
        elif value is None:
            into.pop(key, None)
        else:
            into[key] = copy.deepcopy(value)


def split_image(image: str) -> tuple[str, str]:
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return image.rsplit(":", 1)[0], image.rsplit(":", 1)[1]
    return image, ""


def pod_spec(obj: dict) -> dict | None:
    spec = obj.get("spec", {})
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def containers_of_all(objects: list[dict]):
    for obj in objects:
        spec = pod_spec(obj)
        if spec:
            yield from spec.get("initContainers", [])
            yield from spec.get("containers", [])


def key_of(obj: dict) -> tuple[str, str, str]:
    metadata = obj.get("metadata", {})
    return (obj.get("kind", "?"), metadata.get("namespace", ""), metadata.get("name", "?"))


def kubectl_differences(directory: Path, objects: list[dict]) -> list[str]:
    """Where `kubectl kustomize` (when on PATH) renders other objects than render() did."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return []
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        return [f"kubectl kustomize {directory} failed: {result.stderr.strip()}"]
    theirs = {key_of(o): o for o in (masked(o) for o in yaml.safe_load_all(result.stdout)) if o}
    ours = {key_of(o): o for o in (masked(o) for o in objects)}
    problems = []
    for key in sorted(set(theirs) | set(ours)):
        if key not in ours:
            problems.append(f"kubectl kustomize renders {'/'.join(key)}, this renderer does not")
        elif key not in theirs:
            problems.append(f"this renderer renders {'/'.join(key)}, kubectl kustomize does not")
        elif normalised(theirs[key]) != normalised(ours[key]):
            problems.append(f"{'/'.join(key)} differs from kubectl kustomize's rendering")
    return problems


def masked(obj):
    """obj with every generated ConfigMap's name suffix (and references to it) spelled -HASH."""
    if not obj:
        return obj
    text = json.dumps(obj)
    for name in GENERATED_NAMES:
        text = re.sub(rf'"{re.escape(name)}-[a-z0-9]{{10}}"', f'"{name}-HASH"', text)
    return json.loads(text)


def normalised(obj: dict) -> str:
    # YAML gives 0400 as an int either way; JSON with sorted keys ignores key order.
    return json.dumps(obj, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Checks


def schema_problems(objects: list[dict]) -> list[str]:
    problems = []
    for obj in objects:
        name = "/".join(key_of(obj))
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path) or "(top)"
                problems.append(f"{name}: not valid in Kubernetes {version}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{name}: Kubernetes {version} has no {obj.get('apiVersion')} "
                                f"{obj.get('kind')}")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def policy_problems(objects: list[dict], external: dict) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    deployments = by_kind.get("Deployment", {})
    workloads = {name: obj for kind in WORKLOAD_KINDS for name, obj in by_kind.get(kind, {}).items()}
    pod_labels = {name: w["spec"]["template"]["metadata"].get("labels", {})
                  for name, w in workloads.items()}

    for name, workload in workloads.items():
        what = f"{workload['kind']} {name}"
        spec = workload["spec"]["template"]["spec"]
        pod_context = spec.get("securityContext") or {}
        for container in spec.get("containers", []):
            where = f"{what}, container {container['name']}"
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(part) or {}):
                        problems.append(f"{where}: no {resource} {part[:-1]} (resources.{part}.{resource})")
            context = {**pod_context, **(container.get("securityContext") or {})}
            if context.get("runAsNonRoot") is not True or context.get("runAsUser", 1) == 0:
                problems.append(f"{where}: may run as root (set securityContext.runAsNonRoot: true "
                                "and a non-zero runAsUser)")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")

    for name in DISRUPTION_BUDGETED:
        budgets = [p for p in by_kind.get("PodDisruptionBudget", {}).values()
                   if p["apiVersion"] == "policy/v1" and name in pod_labels
                   and selects(p["spec"].get("selector", {}), pod_labels[name])]
        if not budgets:
            problems.append(f"no PodDisruptionBudget (policy/v1) selects the pods of {name}")

    for name in AUTOSCALED:
        scalers = [h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()
                   if h["apiVersion"] == "autoscaling/v2"
                   and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
                   and h["spec"]["scaleTargetRef"].get("name") == name]
        if not scalers:
            problems.append(f"no HorizontalPodAutoscaler (autoscaling/v2) scales Deployment {name}")
        elif name in deployments and "replicas" in deployments[name]["spec"]:
            problems.append(f"Deployment {name} sets replicas, which every `kubectl apply` would "
                            "reset under its HorizontalPodAutoscaler")
    for scaler in by_kind.get("HorizontalPodAutoscaler", {}).values():
        ref = scaler["spec"]["scaleTargetRef"]
        if ref.get("name") not in workloads:
            problems.append(f"HorizontalPodAutoscaler {scaler['metadata']['name']} scales "
                            f"{ref.get('kind')} {ref.get('name')}, which does not exist")

    services = by_kind.get("Service", {})
    for name in BALANCED_SERVICES:
        if name not in services:
            problems.append(f"no Service {name}")
        elif services[name]["spec"].get("clusterIP") != "None":
            problems.append(f"Service {name} is not headless (clusterIP: None): its callers "
                            "balance per call over the addresses its name resolves to")
    for name, service in services.items():
        selector = service["spec"].get("selector") or {}
        if not any(selects({"matchLabels": selector}, labels) for labels in pod_labels.values()):
            problems.append(f"Service {name} selects no pods")

    problems.extend(network_problems(by_kind.get("NetworkPolicy", {}), pod_labels, external))
    return problems


def network_problems(policies: dict[str, dict], pod_labels: dict[str, dict],
                     external: dict) -> list[str]:
    problems = []
    default_deny = [p for p in policies.values()
                    if p["spec"].get("podSelector") == {}
                    and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    if not default_deny:
        problems.append("no default-deny NetworkPolicy (podSelector: {}, policyTypes Ingress and "
                        "Egress, no rules)")
    for pod, labels in sorted(pod_labels.items()):
        reached: dict[str, set | None] = {}  # policy name -> external ports (None: any)
        open_ingress = []
        for name, policy in policies.items():
            spec = policy["spec"]
            if not selects(spec.get("podSelector", {}), labels):
                continue
            types = spec.get("policyTypes", ["Ingress"])
            if "Egress" in types:
                for rule in spec.get("egress") or []:
                    peers = rule.get("to") or []
                    if peers and not any("ipBlock" in peer for peer in peers):
                        continue  # pods and namespaces of this cluster only
                    ports = rule.get("ports")
                    found = None if not ports else {p.get("port") for p in ports}
                    previous = reached.get(name, set())
                    reached[name] = None if found is None or previous is None else previous | found
            if "Ingress" in types:
                if any(not rule.get("from") for rule in spec.get("ingress") or []):
                    open_ingress.append(name)
        allowed = external.get(pod, set())
        for name, ports in reached.items():
            if allowed is None:
                continue
            if ports is None or not ports <= allowed:
                shown = "any port" if ports is None else "port " + ", ".join(map(str, sorted(ports)))
                problems.append(f"NetworkPolicy {name} lets {pod} reach outside the cluster "
                                f"({shown}); only llm-service may")
        if pod in external and external[pod] is None and not reached:
            problems.append(f"no NetworkPolicy lets {pod} reach the model providers")
        if open_ingress and pod != "gateway":
            problems.append(f"NetworkPolicy {', '.join(open_ingress)} lets any source connect to "
                            f"{pod}; only the gateway takes outside connections")
    return problems


def check(relative: str, external: dict) -> tuple[int, list[str]]:
    """How many objects `relative` renders to, and what is wrong with them."""
    directory = REPO / relative
    try:
        objects = render(directory)
    except (RenderError, yaml.YAMLError, OSError, KeyError) as e:
        return 0, [f"cannot render: {e}"]
    problems = kubectl_differences(directory, objects)
    problems += schema_problems(objects)
    try:
        problems += policy_problems(objects, external)
    except (KeyError, TypeError, AttributeError) as e:
        problems.append(f"an object lacks a field the policy checks read: {e!r}")
    return len(objects), problems


# ---------------------------------------------------------------------------------------------
# Self-test: every kind of break must be reported.


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def first_container(objects, name):
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


BREAKS = [
    ("a wrongly typed field", "not valid in Kubernetes",
     lambda o: first_container(o, "gateway")["ports"][0].update(containerPort="eight thousand")),
    ("a misspelt field", "not valid in Kubernetes",
     lambda o: first_container(o, "chat-service").update(readinesProbe={})),
    ("an API version Kubernetes does not serve", "has no autoscaling/v2beta2",
     lambda o: find(o, "HorizontalPodAutoscaler", "llm-service").update(apiVersion="autoscaling/v2beta2")),
    ("no memory limit", "no memory limit",
     lambda o: first_container(o, "llm-service")["resources"]["limits"].pop("memory")),
    ("no cpu request", "no cpu request",
     lambda o: first_container(o, "user-service")["resources"]["requests"].pop("cpu")),
    ("a pod that may run as root", "may run as root",
     lambda o: find(o, "Deployment", "gateway")["spec"]["template"]["spec"].pop("securityContext")),
    ("no liveness probe", "no livenessProbe",
     lambda o: first_container(o, "user-service").pop("livenessProbe")),
    ("a missing PodDisruptionBudget", "no PodDisruptionBudget (policy/v1) selects the pods of user-service",
     lambda o: o.remove(find(o, "PodDisruptionBudget", "user-service"))),
    ("a missing HorizontalPodAutoscaler", "scales Deployment chat-service",
     lambda o: o.remove(find(o, "HorizontalPodAutoscaler", "chat-service"))),
    ("fixed replicas under an autoscaler", "Deployment gateway sets replicas",
     lambda o: find(o, "Deployment", "gateway")["spec"].update(replicas=2)),
    ("a ClusterIP Service for a balanced call", "Service llm-service is not headless",
     lambda o: find(o, "Service", "llm-service")["spec"].pop("clusterIP")),
    ("no default-deny NetworkPolicy", "no default-deny NetworkPolicy",
     lambda o: o.remove(find(o, "NetworkPolicy", "default-deny"))),
    ("internet egress for chat-service", "lets chat-service reach outside the cluster",
     lambda o: find(o, "NetworkPolicy", "chat-service")["spec"]["egress"].append(
         {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})),
    ("egress to anywhere for the gateway", "lets gateway reach outside the cluster",
     lambda o: find(o, "NetworkPolicy", "gateway")["spec"]["egress"].append({})),
    ("llm-service cut off from the providers", "lets llm-service reach the model providers",
     lambda o: find(o, "NetworkPolicy", "llm-service")["spec"].pop("egress")),
    ("ingress from anywhere to user-service", "lets any source connect to user-service",
     lambda o: find(o, "NetworkPolicy", "user-service")["spec"]["ingress"].append({})),
]


def self_test() -> int:
    base = "deploy/k8s"
    pristine = render(REPO / base)
    clean = schema_problems(pristine) + policy_problems(pristine, TARGETS[base])
    if clean:
        print("self-test: the unbroken base already fails:\n  " + "\n  ".join(clean))
        return 1
    failures = 0
    for description, expected, breaker in BREAKS:
        objects = copy.deepcopy(pristine)
        breaker(objects)
        problems = schema_problems(objects) + policy_problems(objects, TARGETS[base])
        if any(expected in p for p in problems):
            print(f"self-test: {description}: reported")
        else:
            failures += 1
            print(f"self-test FAILED: {description} was not reported as {expected!r}; got {problems}")
    # A kustomization field this renderer does not implement must stop it, not be skipped.
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "kustomization.yaml").write_text(
            "resources: []\nreplicas:\n  - { name: gateway, count: 3 }\n")
        try:
            render(Path(directory))
            failures += 1
            print("self-test FAILED: an unsupported kustomization field was ignored")
        except RenderError as e:
            print(f"self-test: an unsupported kustomization field: reported ({e})")
    print(f"self-test: {len(BREAKS) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true",
                        help="break the base in known ways and require each to be reported")
    parser.add_argument("--render", metavar="DIR",
                        help="print the rendering of one kustomization (relative to the repository)")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.render:
        print(yaml.safe_dump_all(render(REPO / args.render), sort_keys=False), end="")
        return 0
    failed = False
    for relative, external in TARGETS.items():
        count, problems = check(relative, external)
        if problems:
            failed = True
            print(f"{relative}: {len(problems)} problem(s):")
            for problem in problems:
                print(f"  {problem}")
        else:
            compared = " (same as kubectl kustomize)" if shutil.which("kubectl") else ""
            print(f"{relative}: {count} objects{compared} valid in Kubernetes "
                  f"{' and '.join(v.rsplit('.', 1)[0] for v in KUBERNETES_VERSIONS)} "
                  "(strict schemas); resources, non-root, probes, PodDisruptionBudgets, "
                  "HorizontalPodAutoscalers, headless Services and NetworkPolicies as required")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
