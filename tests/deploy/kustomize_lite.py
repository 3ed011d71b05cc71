"""A small renderer for the subset of kustomize that deploy/k8s/kustomize uses.

The tests prefer a real kustomize (`kustomize build` or `kubectl kustomize`); this is the fallback
for machines without either, so the manifest checks still run. It follows kustomize's rules for
what it supports and refuses everything else (KustomizeLiteError) instead of rendering it wrong:

- resources: files (multi-document YAML) and directories with a kustomization.yaml (local only)
- namespace, labels (pairs, includeSelectors/includeTemplates false only)
- images (name, newName, newTag, digest) on every containers/initContainers list
- patches (path or inline, optional target): a YAML list is a JSON 6902 patch; a mapping is a
  strategic merge patch, merged as kustomize merges custom resources: mappings recursively,
  lists replaced whole, null deletes (kustomize knows no merge keys for Knative's CRDs either)
- configMapGenerator with files/literals and disableNameSuffixHash: true (no name hashing)

Order of the transformations, as in kustomize: patches, namespace, labels, images.

    python tests/deploy/kustomize_lite.py deploy/k8s/kustomize/overlays/air
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches", "configMapGenerator"}

# Kinds that have no namespace (the ones a namespace transformer must leave alone).
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
    "ClusterIssuer",
}

# kustomize's legacy output order: these kinds first (in this order), the rest by group/version/kind.
ORDER_FIRST = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeLiteError(Exception):
    """The kustomization uses something this renderer does not implement, or is invalid."""


# --- entry point ----------------------------------------------------------------------------------


def build(path: str | Path) -> list[dict[str, Any]]:
    """Render the kustomization in directory `path`; returns the documents in kustomize's order."""
    return sorted(_build(Path(path).resolve()), key=_order_key)


def dump(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=True, default_flow_style=False, width=1000) for d in docs)


def _build(root: Path) -> list[dict[str, Any]]:
    kfile = next((root / n for n in KUSTOMIZATION_FILES if (root / n).is_file()), None)
    if kfile is None:
        raise KustomizeLiteError(f"{root}: no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text()) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeLiteError(f"{kfile}: kustomize_lite does not implement {sorted(unknown)}; use kustomize or kubectl")

    docs: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        if "://" in entry or entry.startswith("github.com/"):
            raise KustomizeLiteError(f"{kfile}: remote resource {entry!r} is not supported")
        target = (root / entry).resolve()
        if target.is_dir():
            docs += _build(target)
        elif target.is_file():
            _inside(root, target, kfile)
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise KustomizeLiteError(f"{kfile}: resource {entry!r} not found")
    docs += [_config_map(root, kfile, g) for g in k.get("configMapGenerator", [])]

    for d in docs:
        for field in ("apiVersion", "kind"):
            if field not in d:
                raise KustomizeLiteError(f"{kfile}: a resource has no {field}: {d!r:.200}")
        if not d.get("metadata", {}).get("name"):
            raise KustomizeLiteError(f"{kfile}: a {d['kind']} has no metadata.name")

    for p in k.get("patches", []):
        _apply_patch(root, kfile, docs, p)
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    for spec in k.get("labels", []):
        if spec.get("includeSelectors") or spec.get("includeTemplates"):
            raise KustomizeLiteError(f"{kfile}: labels with includeSelectors/includeTemplates are not supported")
        for d in docs:
            d["metadata"].setdefault("labels", {}).update({str(a): str(b) for a, b in spec.get("pairs", {}).items()})
    for image in k.get("images", []):
        for d in docs:
            _set_image(d, image)

    _check_unique(docs, kfile)
    return docs


def _inside(root: Path, target: Path, kfile: Path) -> None:
    # kustomize's default load restriction: files (not kustomization dirs) must be under the root.
    if root != target and root not in target.parents:
        raise KustomizeLiteError(f"{kfile}: file {target} is not in or below {root}")


def _check_unique(docs: list[dict[str, Any]], kfile: Path) -> None:
    seen = set()
    for d in docs:
        key = _id(d)
        if key in seen:
            raise KustomizeLiteError(f"{kfile}: resource {key} is defined twice")
        seen.add(key)


def _id(d: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = d.get("metadata", {})
    return (d["apiVersion"], d["kind"], meta.get("namespace", ""), meta["name"])


def _order_key(d: dict[str, Any]) -> tuple:
    kind = d["kind"]
    group_version = d["apiVersion"].split("/")
    group, version = (group_version[0], group_version[1]) if len(group_version) == 2 else ("", group_version[0])
    if kind in ORDER_FIRST:
        rank = (0, ORDER_FIRST.index(kind), "")
    elif kind in ORDER_LAST:
        rank = (2, ORDER_LAST.index(kind), "")
    else:
        rank = (1, 0, f"{group}_{version}_{kind}")
    return (*rank, d["metadata"].get("namespace", ""), d["metadata"]["name"])


# --- generators -----------------------------------------------------------------------------------


def _config_map(root: Path, kfile: Path, gen: dict[str, Any]) -> dict[str, Any]:
    allowed = {"name", "files", "literals", "options"}
    if set(gen) - allowed:
        raise KustomizeLiteError(f"{kfile}: configMapGenerator field(s) {sorted(set(gen) - allowed)} not supported")
    options = gen.get("options", {})
    if not options.get("disableNameSuffixHash"):
        raise KustomizeLiteError(f"{kfile}: configMapGenerator {gen['name']}: name hashing is not implemented; set disableNameSuffixHash")
    data: dict[str, str] = {}
    for item in gen.get("files", []):
        key, _, rel = item.partition("=") if "=" in item else (Path(item).name, "", item)
        file = (root / rel).resolve()
        _inside(root, file, kfile)
        data[key] = file.read_text()
    for item in gen.get("literals", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise KustomizeLiteError(f"{kfile}: literal {item!r} is not key=value")
        data[key] = value
    meta: dict[str, Any] = {"name": gen["name"]}
    if options.get("labels"):
        meta["labels"] = {str(a): str(b) for a, b in options["labels"].items()}
    if options.get("annotations"):
        meta["annotations"] = {str(a): str(b) for a, b in options["annotations"].items()}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# --- images ---------------------------------------------------------------------------------------


def _split_image(image: str) -> tuple[str, str]:
    """('registry/name', ':tag' or '@sha256:...' or '')."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(node: Any, spec: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and isinstance(c.get("image"), str):
                        name, suffix = _split_image(c["image"])
                        if name == spec["name"]:
                            if "digest" in spec:
                                suffix = "@" + spec["digest"]
                            elif "newTag" in spec:
                                suffix = ":" + str(spec["newTag"])
                            c["image"] = spec.get("newName", name) + suffix
            _set_image(value, spec)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, spec)


# --- patches --------------------------------------------------------------------------------------


def _apply_patch(root: Path, kfile: Path, docs: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    if set(entry) - {"path", "patch", "target", "options"}:
        raise KustomizeLiteError(f"{kfile}: patch field(s) {sorted(set(entry) - {'path', 'patch', 'target', 'options'})} not supported")
    if entry.get("options"):
        raise KustomizeLiteError(f"{kfile}: patch options are not supported")
    if "path" in entry:
        file = (root / entry["path"]).resolve()
        _inside(root, file, kfile)
        text = file.read_text()
    else:
        text = entry["patch"]
    body = list(yaml.safe_load_all(text))
    body = [b for b in body if b is not None]
    target = entry.get("target")

    if len(body) == 1 and isinstance(body[0], list):  # JSON 6902
        if not target:
            raise KustomizeLiteError(f"{kfile}: a JSON 6902 patch needs a target")
        matched = [d for d in docs if _matches(d, target)]
        if not matched:
            raise KustomizeLiteError(f"{kfile}: patch target {target} matches no resource")
        for d in matched:
            _json6902(d, body[0], kfile)
        return

    for patch in body:  # strategic merge patch(es)
        if not isinstance(patch, dict):
            raise KustomizeLiteError(f"{kfile}: a patch must be a mapping or a list of operations")
        if target:
            matched = [d for d in docs if _matches(d, target)]
        else:
            pm = patch.get("metadata", {})
            matched = [
                d
                for d in docs
                if d["apiVersion"] == patch.get("apiVersion")
                and d["kind"] == patch.get("kind")
                and d["metadata"]["name"] == pm.get("name")
                and pm.get("namespace") in (None, d["metadata"].get("namespace"))
            ]
        if not matched:
            raise KustomizeLiteError(
                f"{kfile}: strategic merge patch for {patch.get('kind')}/{patch.get('metadata', {}).get('name')} matches no resource"
            )
        for d in matched:
            body_patch = copy.deepcopy(patch)
            if target:  # the target decides; the patch's own identity fields do not rename it
                for field in ("apiVersion", "kind"):
                    body_patch.pop(field, None)
                body_patch.get("metadata", {}).pop("name", None)
            merged = _merge(d, body_patch, kfile)
            d.clear()
            d.update(merged)


def _matches(d: dict[str, Any], target: dict[str, Any]) -> bool:
    group_version = d["apiVersion"].split("/")
    group, version = (group_version[0], group_version[1]) if len(group_version) == 2 else ("", group_version[0])
    meta = d["metadata"]
    checks = {
        "group": group,
        "version": version,
        "kind": d["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
    }
    for field, value in target.items():
        if field in checks:
            if not re.fullmatch(str(value), checks[field]):
                return False
        elif field == "labelSelector":
            labels = meta.get("labels", {})
            for term in str(value).split(","):
                k, sep, v = term.partition("=")
                if not sep or labels.get(k.strip()) != v.strip():
                    return False
        else:
            raise KustomizeLiteError(f"patch target field {field!r} is not supported")
    return True


def _merge(base: Any, patch: Any, kfile: Path) -> Any:
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    if any(isinstance(k, str) and k.startswith("$") for k in patch):
        raise KustomizeLiteError(f"{kfile}: strategic merge directives ($patch, $setElementOrder...) are not supported")
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, kfile)
        else:
            out[key] = copy.deepcopy(value)  # lists of custom resources are replaced whole
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeLiteError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise KustomizeLiteError(f"JSON patch path {path!r} does not exist") from exc
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise KustomizeLiteError(f"JSON patch path {path!r} does not exist") from exc
    return node


def _add(doc: Any, path: str, value: Any) -> None:
    parent, last = _parent(doc, _pointer(path), path)
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise KustomizeLiteError(f"JSON patch add: index out of range in {path!r}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KustomizeLiteError(f"JSON patch add: {path!r} has no container")


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, _pointer(path), path)
    try:
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)
    except (KeyError, IndexError, ValueError) as exc:
        raise KustomizeLiteError(f"JSON patch remove: {path!r} does not exist") from exc


def _json6902(doc: dict[str, Any], ops: list[dict[str, Any]], kfile: Path) -> None:
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            parent, last = _parent(doc, _pointer(path), path)
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise KustomizeLiteError(f"{kfile}: JSON patch test failed at {path!r}: {_get(doc, path)!r} != {op['value']!r}")
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "move":
            _add(doc, path, _remove(doc, op["from"]))
        else:
            raise KustomizeLiteError(f"{kfile}: JSON patch op {kind!r} is not supported")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: kustomize_lite.py DIR", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dump(build(args[0])))
    except KustomizeLiteError as exc:
        print(f"kustomize_lite: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
