"""LUKE's command lines (`python -m luke_static VERB`): each parses its flags and calls the library.

    python -m luke_static convert --from hf|paddlenlp SRC_DIR --output DIR
    python -m luke_static export --model DIR --output PREFIX|DIR [--word-only] [--onnx]
                                 [--precision fp32|int8|bf16 --check-text FILE]
    python -m luke_static predict --model EXPORT --input FILE [--output FILE.jsonl] [--task TASK]
                                  [--device auto|cpu|gpu] [--precision recorded|fp32]
    python -m luke_static fill-mask --model DIR --text "Beyoncé lives in <mask>." [--entity-spans 0:7]
    python -m luke_static squad-check DATA.json --model DIR [--max-seq-length 512] [--doc-stride 128]
    python -m luke_static squad-eval DATA.json PREDICTIONS

`predict` runs the pipeline of the task the export records (`luke_static.pipelines`); every
prediction command prints one JSON record per input. Fine-tuning itself is `sh run.sh
squad|open_entity|relation|ner` (the engine's training command).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

from engine.precision import add_precision_arguments, precision_options


def _parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)


def convert(argv: list[str] | None = None) -> Path:
    """Convert a public LUKE checkpoint (HF or PaddleNLP) into a model directory: `luke_config.json`, the
    tokenizer files, one file per variable under HF's names. A fine-tuned checkpoint keeps its head
    (question answering, entity, entity-pair or entity-span classification, masked LM): the directory
    records the task and labels, and `python -m luke_static export` writes the task's program."""
    parser = _parser(convert.__doc__)
    parser.add_argument("--from", dest="kind", choices=("hf", "paddlenlp"), required=True)
    parser.add_argument("src", help="directory of the checkpoint to convert")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)

    from luke_static.formats import convert as convert_checkpoint

    cfg, head = convert_checkpoint(args.kind, args.src, args.output)
    from luke_static.tokenizer import SENTENCEPIECE_MODEL

    multilingual = Path(args.output, SENTENCEPIECE_MODEL).is_file()
    kind = "mLUKE (XLM-R's SentencePiece words)" if multilingual else "LUKE (RoBERTa's BPE words)"
    # The lite models keep the special entities alone: [PAD], [UNK], [MASK] (and [MASK2]).
    entities = ("no entity table (a lite model)" if cfg.entity_vocab_size <= 4
                else f"{cfg.entity_vocab_size:,} entities")
    print(f"converted a {cfg.num_hidden_layers}-layer {kind}, hidden {cfg.hidden_size}, {entities}, "
          f"into {args.output}")
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
    predictor takes that directory; --encoder exports its encoder alone instead (the published pretrained
    models are masked LMs: their encoder is what a network of your own reads). --onnx also writes the
    program as ONNX for ONNX Runtime (paddle2onnx)."""
    parser = _parser(export.__doc__)
    parser.add_argument("--model", required=True, help="LUKE model directory (from python -m luke_static convert)")
    parser.add_argument("--output", required=True,
                        help="path prefix of the program files; for a fine-tuned model (with a task head), "
                             "the directory its predictor takes")
    parser.add_argument("--encoder", action="store_true",
                        help="export the encoder alone, also from a model with a task head (a pretrained masked LM)")
    parser.add_argument("--word-only", action="store_true", help="export the encoder without the entity inputs")
    parser.add_argument("--onnx", action="store_true", help="also write PREFIX.onnx (needs the [onnx] extra)")
    add_precision_arguments(parser, "inputs to measure --precision on: for a task export, a file as `predict "
                                    "--input` reads it; for an encoder, text, one input per line")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    floor = precision_options(parser, args)

    import paddle

    from engine.inference import lower_precision
    from engine.precision import describe
    from engine.runtime import DistEnv, RuntimeConfig, setup
    from luke_static.formats import export_encoder, export_task, load_task
    from luke_static.precision import encoder_check, pipeline_check

    place = setup(RuntimeConfig(threads=args.threads), DistEnv())
    exe = paddle.static.Executor(place)
    task = load_task(args.model) is not None and not (args.encoder or args.word_only)
    onnx = args.onnx or args.precision == "int8"  # int8 is the ONNX program quantized
    if task:
        prefix = export_task(exe, place, args.model, args.output, onnx=onnx)
    else:
        prefix = export_encoder(exe, place, args.model, args.output, with_entities=not args.word_only, onnx=onnx)
    print(f"exported {prefix}.json and {prefix}.pdiparams" + (f" and {prefix}.onnx" if onnx else ""))
    if args.precision != "fp32":
        measure = (pipeline_check(args.output, args.check_text, args.threads) if task
                   else encoder_check(Path(prefix).parent, args.check_text))
        record = lower_precision(prefix, args.precision, measure, floor, threads=args.threads)
        print(f"exported {Path(prefix).parent / record.file} ({record.precision})")
        print(f"{record.precision} {describe(record.check)}")
    return prefix


def squad_eval(argv: list[str] | None = None) -> dict[str, float]:
    """The official SQuAD v1.1 evaluation: prints {"exact_match": …, "f1": …}. The predictions are the
    official JSON object {question id: answer}, or `predict`'s JSON Lines ({"id", "answer", …} a line)."""
    parser = argparse.ArgumentParser(description=squad_eval.__doc__)
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
    predictions = _predictions(args.prediction_file)
    try:
        scores = evaluate(dataset["data"], predictions)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{args.dataset_file}: a malformed article, paragraph or question (missing {exc})") from None
    print(json.dumps(scores))
    return scores


def _predictions(path: str) -> dict[str, str]:
    """{question id: answer} from the official predictions file or `predict`'s records."""
    from engine.errors import DataError

    try:
        predictions = _read_json(path, "prediction file")
    except DataError as not_json:
        from reader.text_file import json_records

        try:
            records = json_records(path, "prediction file")
        except DataError:
            raise not_json from None
        if not all(isinstance(r, dict) and isinstance(r.get("answer"), str) and "id" in r for r in records):
            raise not_json from None
        predictions = {str(r["id"]): r["answer"] for r in records}
    if not isinstance(predictions, dict) or not all(isinstance(v, str) for v in predictions.values()):
        raise DataError(f"{path}: not a predictions file (a JSON object mapping question ids to answer strings, "
                        "or JSON Lines of {\"id\", \"answer\"} records)")
    return predictions


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
    from luke_static.tokenizer import load_tokenizer

    examples = read_squad(args.data, args.strict_answers)
    repaired = answer_report(examples, limit=None if args.verbose else 5)
    if repaired:
        print(f"note: {repaired}")
    tokenizer = load_tokenizer(args.model, add_prefix_space=True)
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


def predict(argv: list[str] | None = None) -> int:
    """Run a LUKE task export over a file and write one JSON record per input (JSON Lines): the task is
    the one the export records (task.json), so one command serves NER, relations, entity typing,
    question answering and fill-mask exports."""
    from engine.inference import DEVICES
    from luke_static.pipelines import registered_pipelines

    pipelines = registered_pipelines()
    formats = "\n".join(f"  {name}: {cls.input_format}" for name, cls in pipelines.items())
    parser = argparse.ArgumentParser(description=predict.__doc__, epilog=f"--input, by task:\n{formats}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a task export (a run's inference/ directory, or "
                                                       "`luke_static export` of a fine-tuned model)")
    parser.add_argument("--input", required=True, help="the inputs, in the task's format (below)")
    parser.add_argument("--output", help="JSON Lines file to write (default: print)")
    parser.add_argument("--task", choices=list(pipelines), help="refuse an export of another task")
    parser.add_argument("--backend", choices=("auto", "paddle", "onnxruntime"), default="auto",
                        help="auto (default): what the export's precision needs; else ONNX Runtime when the "
                             "export has its .onnx file and the onnx extra is installed, else paddle.inference")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto (default): the first card when the runtime can use one; cpu; gpu")
    parser.add_argument("--precision", choices=("recorded", "fp32"), default="recorded",
                        help="recorded (default): the precision the export was made for; fp32: its fp32 program")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = parser.parse_args(argv)

    from luke_static.pipelines import pipeline, pipeline_for

    options = {"device": args.device, "precision": args.precision}
    pipe = (pipeline(args.task, args.model, args.backend, args.threads, **options) if args.task
            else pipeline_for(args.model, args.backend, args.threads, **options))
    return write_records(pipe.records(args.input), args.output, f"{pipe.task}, {pipe.program.describe()}")


def write_records(records, output: str | None, what: str) -> int:
    """Prints `records` as JSON Lines, or writes them to `output` (complete or not at all); returns how many."""
    from engine.atomic import atomic_file

    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if output is not None:
            out = stack.enter_context(open(stack.enter_context(atomic_file(output)), "w", encoding="utf-8"))
        count = 0
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    # On stderr, so the records alone are the output.
    print(f"wrote {count:,} records to {output} ({what})" if output is not None else f"{count:,} records ({what})",
          file=sys.stderr)
    return count


def fill_mask(argv: list[str] | None = None) -> dict:
    """Fill `<mask>` words and masked entities with a converted masked-LM checkpoint (`LukeForMaskedLM`:
    the published pretrained LUKE models are these): prints one JSON record with the top-k words for
    each `<mask>` and the top-k entities for each --entity-spans span (entered as `[MASK]`). --model is
    the model directory from `python -m luke_static convert`, or its export."""
    parser = _parser(fill_mask.__doc__)
    parser.add_argument("--model", required=True, help="masked-LM model directory, or its export directory")
    parser.add_argument("--text", required=True, help='text with <mask> tokens, e.g. "Beyoncé lives in <mask>."')
    parser.add_argument("--entity-spans", default="",
                        help="character spans to predict entities for, e.g. 0:7,17:28 (end exclusive)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    spans = _spans(parser, args.entity_spans)

    from luke_static.pipelines import pipeline

    filled = pipeline("fill_mask", args.model, threads=args.threads)(args.text, entity_spans=spans, top_k=args.top_k)
    print(json.dumps({"text": args.text, **filled}, ensure_ascii=False))
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
