"""Fills models/steel-defect/README.md from training/steel-card.template.md: the inputs table and the recommended rule from the
model's metadata, and the reference classifiers from training-report.json (the metrics block is evaluate.mjs's)."""

import json

import onnx

import common

d = common.MODELS_DIR / "steel-defect"
model = onnx.load(str(d / "model.onnx"))
meta = json.loads(next(e.value for e in model.metadata_props if e.key == "lineguard"))
report = json.loads((d / "training-report.json").read_text(encoding="utf-8"))
def js(v: float) -> str:
    """A number as JavaScript prints it (the card test compares with String(mean))."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


rows = []
for i, inp in enumerate(meta["inputs"]):
    desc = inp["description"]
    rows.append(f"| {i} | `{inp['name']}` | {inp['unit']} | {js(inp['mean'])} | {js(inp['std'])} | {desc} |")
refs = report["referenceModelsTestAccuracy"]
names = {"histGradientBoosting": "gradient-boosted trees (scikit-learn HistGradientBoosting, defaults) on the raw features",
         "randomForest500": "random forest, 500 trees (scikit-learn defaults)"}
ref_rows = [f"| {names.get(k, k)} | {v:.4f} |" for k, v in refs.items() if isinstance(v, float)]
text = (common.MODELS_DIR / "training" / "steel-card.template.md").read_text(encoding="utf-8")
text = (text.replace("{{INPUTS}}", "\n".join(rows))
        .replace("{{RECOMMENDED}}", json.dumps(meta["recommendedAlert"], separators=(",", ":")))
        .replace("{{REFS}}", "\n".join(ref_rows)))
old = (d / "README.md").read_text(encoding="utf-8") if (d / "README.md").exists() else ""
begin, end = "<!-- metrics:begin", "<!-- metrics:end -->"
if begin in old:  # keep the generated block
    block = old[old.index(begin):old.index(end) + len(end)]
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
(d / "README.md").write_text(text, encoding="utf-8")
print("wrote", d / "README.md")
