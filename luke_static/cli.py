"""LUKE's command lines: each parses its flags and calls the library.

    python -m luke_static.convert --from hf|paddlenlp SRC_DIR --output DIR
    python -m luke_static.export --model DIR --output PREFIX|DIR [--word-only] [--onnx]
    python -m luke_static.squad_check DATA.json --model DIR [--max-seq-length 512] [--doc-stride 128]
                                      [--max-query-length 64]
    python -m luke_static.squad_eval DATA.json PREDICTIONS.json
    python -m luke_static.squad_predict --model output/squad/inference --input questions.json --output answers.json
    python -m luke_static.open_entity_predict --model output/open_entity/inference --input records.json
                                              [--output labels.json]
    python -m luke_static.relation_predict --model output/relation/inference --input records.json
                                           [--output relations.json]
    python -m luke_static.ner_predict --model output/ner/inference --input sentences.txt [--output tagged.txt]
    python -m luke_static.fill_mask --model DIR --text "Beyoncé lives in <mask>." [--entity-spans 0:7]

A converted fine-tuned checkpoint's export (`luke_static.export` of a model
with a task head) is an inference directory the matching predictor takes.

Every *_predict also takes --backend auto|paddle|onnxruntime (auto, the default: ONNX Runtime when the
export has its .onnx file and the onnx extra is installed) and --threads N.
Fine-tuning itself is `sh run.sh squad|open_entity|relation|ner` (the engine's training command).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path


def _parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def _predictor_parser(description: str) -> argparse.ArgumentParser:
    """A predictor's flags: the exported model, and how to run it."""
    parser = _parser(description)
    parser.add_argument("--model", required=True, help="the job's inference directory")
    parser.add_argument("--backend", choices=("auto", "paddle", "onnxruntime"), default="auto",
                        help="onnxruntime runs the ONNX export (train.export_onnx=true; the [onnx] extra); auto "
                             "(default): onnxruntime when the export has its .onnx file and the extra is installed")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    return parser


def _run_export(args, prefix: str, arrays: dict) -> dict:
    """The exported program's outputs over `arrays`, in batches of `--batch-size`."""
    from engine.inference import InferenceProgram, fastest_backend, run_in_batches

    backend = args.backend
    if backend == "auto":  # ONNX Runtime ran the LUKE encoder about 1.45x faster than paddle.inference here
        backend = fastest_backend() if Path(args.model, f"{prefix}.onnx").is_file() else "paddle"
    program = InferenceProgram(Path(args.model) / prefix, args.threads, backend=backend)
    return run_in_batches(program.run, arrays, args.batch_size)


def convert(argv: list[str] | None = None) -> Path:
    """Convert a public LUKE checkpoint (HF or PaddleNLP) into a model directory: `luke_config.json`, the
    tokenizer files, one file per variable under HF's names. A fine-tuned checkpoint keeps its head
    (question answering, entity, entity-pair or entity-span classification, masked LM): the directory
    records the task and labels, and `luke_static.export` writes the task's program."""
    parser = _parser(convert.__doc__)
    parser.add_argument("--from", dest="kind", choices=("hf", "paddlenlp"), required=True)
    parser.add_argument("src", help="directory of the checkpoint to convert")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)

    from luke_static.formats import convert as convert_checkpoint

    cfg, head = convert_checkpoint(args.kind, args.src, args.output)
    print(f"converted a {cfg.num_hidden_layers}-layer LUKE (hidden {cfg.hidden_size}, "
          f"{cfg.entity_vocab_size:,} entities) into {args.output}")
    if head is not None:
        labels = f" with {len(head.labels)} labels" if head.labels else ""
        print(f"with its {head.task} head{labels}")
    return Path(args.output)


def export(argv: list[str] | None = None) -> str:
    """Export a LUKE model directory as an inference program (PREFIX.json + PREFIX.pdiparams): feeds
    `input_ids`, `attention_mask`, `token_type_ids`, `entity_ids`, `entity_attention_mask`,
    `entity_token_type_ids`, `entity_position_ids` (int64; the last [B, N, M] padded with -1); outputs
    `word_last_hidden_state`, `entity_last_hidden_state`, `pooler_output`. A converted fine-tuned model
    (with a task head) is exported as its task program into the directory --output, with HF's output
    names (`start_logits`/`end_logits`, `logits`, `entity_logits`), its labels and settings: the task's
    predictor takes that directory. --onnx also writes the program as ONNX for ONNX Runtime (paddle2onnx)."""
    parser = _parser(export.__doc__)
    parser.add_argument("--model", required=True, help="LUKE model directory (from luke_static.convert)")
    parser.add_argument("--output", required=True,
                        help="path prefix of the program files; for a fine-tuned model (with a task head), "
                             "the directory its predictor takes")
    parser.add_argument("--word-only", action="store_true", help="export without the entity inputs")
    parser.add_argument("--onnx", action="store_true", help="also write PREFIX.onnx (needs the [onnx] extra)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import paddle

    from engine.runtime import DistEnv, RuntimeConfig, setup
    from luke_static.formats import export_encoder, export_task, load_task

    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    exe = paddle.static.Executor(place)
    if load_task(args.model) is not None:
        prefix = export_task(exe, place, args.model, args.output, onnx=args.onnx)
    else:
        prefix = export_encoder(exe, place, args.model, args.output, with_entities=not args.word_only,
                                onnx=args.onnx)
    print(f"exported {prefix}.json and {prefix}.pdiparams" + (f" and {prefix}.onnx" if args.onnx else ""))
    return prefix


def squad_eval(argv: list[str] | None = None) -> dict[str, float]:
    """The official SQuAD v1.1 evaluation: prints {"exact_match": …, "f1": …}."""
    parser = argparse.ArgumentParser(description="Evaluation for SQuAD 1.1")
    parser.add_argument("dataset_file")
    parser.add_argument("prediction_file")
    args = parser.parse_args(argv)

    from engine.errors import DataError
    from luke_static.squad.answers import evaluate

    dataset = _read_json(args.dataset_file, "dataset file")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise DataError(f"{args.dataset_file}: not a SQuAD dataset (a JSON object with a 'data' list)")
    if dataset.get("version") != "1.1":
        print(f"Evaluation expects v-1.1, but got dataset with v-{dataset.get('version')}", file=sys.stderr)
    predictions = _read_json(args.prediction_file, "prediction file")
    if not isinstance(predictions, dict) or not all(isinstance(v, str) for v in predictions.values()):
        raise DataError(f"{args.prediction_file}: not a predictions file (a JSON object mapping question ids "
                        "to answer strings)")
    try:
        scores = evaluate(dataset["data"], predictions)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{args.dataset_file}: a malformed article, paragraph or question (missing {exc})") from None
    print(json.dumps(scores))
    return scores


def _read_json(path: str, what: str):
    """A JSON file's contents; a missing, unreadable or invalid file is one DataError naming it."""
    from engine.errors import DataError

    try:
        with open(path, encoding="utf-8-sig") as f:  # files saved on Windows often start with a BOM
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def squad_check(argv: list[str] | None = None) -> dict:
    """Check SQuAD preprocessing before training: tokenize like training, cut the doc-stride windows, and
    score an oracle that answers with exactly the gold token span, mapped back to text the way predictions
    are. Anything below 100 is lost before training."""
    parser = _parser(squad_check.__doc__)
    parser.add_argument("data", help="SQuAD 1.1 JSON")
    parser.add_argument("--model", required=True, help="LUKE model directory (for its tokenizer)")
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--strict-answers", action="store_true",
                        help="an answer_start that misses its text is an error (default: repaired or skipped)")
    parser.add_argument("--verbose", action="store_true", help="list every question whose answer was repaired")
    args = parser.parse_args(argv)

    from luke_static.squad.answers import evaluate, oracle
    from luke_static.squad.data import WindowSettings, answer_report, build_features, gold_articles, read_squad
    from luke_static.tokenizer import LukeTokenizer

    examples = read_squad(args.data, args.strict_answers)
    repaired = answer_report(examples, limit=None if args.verbose else 5)
    if repaired:
        print(f"note: {repaired}")
    tokenizer = LukeTokenizer.from_dir(args.model, add_prefix_space=True)
    settings = WindowSettings(args.max_seq_length, args.doc_stride, args.max_query_length)
    features = build_features(examples, tokenizer, settings, training=True)
    answered = [e for e in examples if e.answers]
    reachable, predictions = oracle(examples, features)
    # Unreachable answers are what this reports; no need for one warning each.
    scores = (evaluate(gold_articles(answered), predictions, warn=io.StringIO()) if answered
              else {"exact_match": 0.0, "f1": 0.0})
    report = {"questions": len(examples), "with_answers": len(answered), "reachable": reachable,
              "moved_answers": sum(e.moved for e in examples),
              "unlocated_answers": sum(len(e.unlocated) for e in examples),
              "windows": len(features), "oracle_exact_match": scores["exact_match"], "oracle_f1": scores["f1"]}
    print(f"{reachable:,} of {len(answered):,} gold answers fit a window ({len(features):,} windows); "
          f"oracle EM {scores['exact_match']:.2f}, F1 {scores['f1']:.2f}")
    print(json.dumps(report))
    return report


def squad_predict(argv: list[str] | None = None) -> dict[str, str]:
    """Answer SQuAD-format questions with an exported model (`paddle.inference` or ONNX Runtime); writes
    {question id: answer}, the official script's prediction format."""
    parser = _predictor_parser(squad_predict.__doc__)
    parser.add_argument("--input", required=True, help="SQuAD 1.1 JSON (answers not needed)")
    parser.add_argument("--output", required=True, help="predictions JSON to write")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    from luke_static.squad.answers import best_answers
    from luke_static.squad.data import INFERENCE_PREFIX, build_features, feature_arrays, load_settings, read_squad
    from luke_static.tokenizer import LukeTokenizer

    settings, n_best, max_answer = load_settings(args.model)
    tokenizer = LukeTokenizer.from_dir(args.model, add_prefix_space=True)
    examples = read_squad(args.input)
    features = build_features(examples, tokenizer, settings, training=False)
    arrays = feature_arrays(features, settings, tokenizer.pad_id, tokenizer.entity_pad_id)
    outputs = _run_export(args, INFERENCE_PREFIX, arrays)
    predictions, _ = best_answers(examples, features, outputs["start_logits"], outputs["end_logits"], n_best,
                                  max_answer)
    Path(args.output).write_text(json.dumps(predictions, ensure_ascii=False, indent=1))
    print(f"answered {len(predictions):,} questions → {args.output}")
    return predictions


def open_entity_predict(argv: list[str] | None = None) -> list[list[str]]:
    """Type entity mentions with an exported Open Entity model (`paddle.inference` or ONNX Runtime). Input records
    need `sent`, `start`, `end` (labels are ignored); the output lists, per record, the labels whose logit
    is above 0."""
    args = _task_predictor_parser(open_entity_predict.__doc__, "Open Entity JSON").parse_args(argv)

    from luke_static.open_entity.data import INFERENCE_PREFIX, encode_records, read_records

    labels, tokenizer = _labels_and_tokenizer(args.model, "entity_classification")
    arrays, cut = encode_records(read_records(args.input), tokenizer, labels, args.max_seq_length)
    if cut:
        print(f"note: {cut:,} record(s) longer than --max-seq-length {args.max_seq_length} cut to the mention and "
              "the context around it that fits", file=sys.stderr)
    logits = _run_export(args, INFERENCE_PREFIX, arrays)["logits"]
    predicted = [[label for label, logit in zip(labels, row) if logit > 0] for row in logits]
    _write_or_print(predicted, args.output)
    return predicted


def relation_predict(argv: list[str] | None = None) -> list[str]:
    """Classify the relation between each record's subject and object with an exported relation model
    (`paddle.inference` or ONNX Runtime). Input: TACRED-format records (`token`, `subj_start`, `subj_end`,
    `obj_start`, `obj_end`; `relation` is ignored); output: one relation per record."""
    args = _task_predictor_parser(relation_predict.__doc__, "TACRED-format JSON list or JSONL").parse_args(argv)

    from luke_static.relation.data import INFERENCE_PREFIX, encode_relations, read_relations

    labels, tokenizer = _labels_and_tokenizer(args.model, "entity_pair_classification")
    records = read_relations(args.input, need_relation=False)
    arrays = encode_relations(records, tokenizer, None, args.max_seq_length, args.input)
    predicted = [labels[i] for i in _run_export(args, INFERENCE_PREFIX, arrays)["logits"].argmax(-1)]
    _write_or_print(predicted, args.output)
    return predicted


def _task_predictor_parser(description: str, input_help: str) -> argparse.ArgumentParser:
    parser = _predictor_parser(description)
    parser.add_argument("--input", required=True, help=input_help)
    parser.add_argument("--output", help="JSON file for the predictions (default: print)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=256)
    return parser


def _labels_and_tokenizer(model: str, task: str):
    from luke_static.formats import load_labels
    from luke_static.tokenizer import LukeTokenizer

    return load_labels(model), LukeTokenizer.from_dir(model, add_prefix_space=True, task=task)


def _write_or_print(predictions, output: str | None) -> None:
    text = json.dumps(predictions, ensure_ascii=False)
    if output:
        Path(output).write_text(text)
    else:
        print(text)


def ner_predict(argv: list[str] | None = None) -> list[list[str]]:
    """Tag named entities in tokenized text with an exported NER model (`paddle.inference` or ONNX Runtime). Input:
    one whitespace-tokenized sentence per line, a blank line between documents (a sentence's document gives
    it context); output: `word/TAG` per line, IOB2 tags."""
    parser = _predictor_parser(ner_predict.__doc__)
    parser.add_argument("--input", required=True, help="text file, one tokenized sentence per line")
    parser.add_argument("--output", help="file for the tagged sentences (default: print)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    from luke_static.formats import load_labels
    from luke_static.ner.data import INFERENCE_PREFIX, Sentence, decode, encode, feature_arrays, load_settings
    from luke_static.tokenizer import LukeTokenizer
    from reader.chunks import iob2_tags
    from reader.text_file import numbered_lines

    types, settings = load_labels(args.model), load_settings(args.model)
    tokenizer = LukeTokenizer.from_dir(args.model)
    sentences, document = [], 0
    for _, line in numbered_lines(args.input, "input"):
        if line.split():
            sentences.append(Sentence(line.split(), set(), document))
        else:
            document += 1
    encoded = encode(sentences, tokenizer, settings, types, args.input)
    arrays = feature_arrays(encoded.features, settings, tokenizer)
    logits = _run_export(args, INFERENCE_PREFIX, arrays)["logits"] if encoded.features else None
    spans = decode(encoded, logits, types) if logits is not None else [set() for _ in sentences]
    tagged = [iob2_tags(found, len(s.words)) for found, s in zip(spans, sentences)]
    lines = [" ".join(f"{w}/{t}" for w, t in zip(s.words, tags)) for s, tags in zip(sentences, tagged)]
    if args.output:
        Path(args.output).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        print("\n".join(lines))
    return tagged


def fill_mask(argv: list[str] | None = None) -> dict:
    """Fill `<mask>` words and masked entities with a converted masked-LM checkpoint (`LukeForMaskedLM`:
    the published pretrained LUKE models are these): prints the top-k words for each `<mask>` and the
    top-k entities for each --entity-spans span (entered as `[MASK]`). --model is the model directory
    from `luke_static.convert`, or its export."""
    parser = _parser(fill_mask.__doc__)
    parser.add_argument("--model", required=True, help="masked-LM model directory, or its export directory")
    parser.add_argument("--text", required=True, help='text with <mask> tokens, e.g. "Beyoncé lives in <mask>."')
    parser.add_argument("--entity-spans", default="",
                        help="character spans to predict entities for, e.g. 0:7,17:28 (end exclusive)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    spans = _spans(parser, args.entity_spans)

    import tempfile

    import numpy as np

    from engine.errors import ConfigError
    from engine.inference import InferenceProgram
    from luke_static.formats import load_task
    from luke_static.tokenizer import LukeTokenizer

    model = Path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        if not (model / "masked_lm.json").is_file():
            head = load_task(model)
            if head is None or head.task != "masked_lm":
                raise ConfigError(f"{model} is not a masked-LM model (convert a LukeForMaskedLM checkpoint, "
                                  "e.g. studio-ousia/luke-base, and export it)")
            export([f"--model={model}", f"--output={tmp}", f"--threads={args.threads}"])
            model = Path(tmp)
        tokenizer = LukeTokenizer.from_dir(model, add_prefix_space=True)
        encoding = tokenizer.encode(args.text, entity_spans=spans or None)
        if tokenizer.mask_id not in encoding.input_ids and not spans:
            parser.error("nothing to fill: the text has no <mask> and no --entity-spans were given")
        out = InferenceProgram(model / "masked_lm", args.threads).run(tokenizer.pad([encoding]))
    titles = {index: title for title, index in tokenizer.entity_vocab.items()}

    def top(logits, name):
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return [(name(int(i)), float(probs[i])) for i in np.argsort(-probs)[: args.top_k]]

    filled = {"words": [top(out["logits"][0, i], lambda t: tokenizer.bpe.decode([t]).strip())
                        for i, t in enumerate(encoding.input_ids) if t == tokenizer.mask_id],
              "entities": [top(out["entity_logits"][0, k], titles.get) for k in range(len(encoding.entity_ids))]}
    for i, candidates in enumerate(filled["words"]):
        print(f"<mask> {i + 1}: " + ", ".join(f"{w!r} {p:.3f}" for w, p in candidates))
    for (start, end), candidates in zip(spans, filled["entities"]):
        print(f"{args.text[start:end]!r}: " + ", ".join(f"{t} {p:.3f}" for t, p in candidates))
    return filled


def _spans(parser, text: str) -> list[tuple[int, int]]:
    spans = []
    for item in filter(None, text.split(",")):
        try:
            start, end = (int(x) for x in item.split(":"))
        except ValueError:
            parser.error(f"--entity-spans: {item!r} is not START:END")
        spans.append((start, end))
    return spans
