"""The biLM's command lines (`python -m bilm VERB`): each parses its flags and calls the library.

    python -m bilm train --config configs/elmo.yaml [-o key=value] [--resume]   (= python -m engine)
    python -m bilm evaluate --model DIR --input 'data/dev/*' [--batch-size 32] [--num-steps 20] [--json]
    python -m bilm export --model DIR --output OUT_DIR [--max-length T] [--onnx]
                          [--precision fp32|int8|bf16 --check-text SENTENCES.txt]
    python -m bilm dump --model DIR --input SENTENCES.txt --output OUT.hdf5 [--batch-size 256]
                        [--max-tokens 2048] [--stateful] [--layers all|top|mix|-2|-1|K]
                        [--backend auto|paddle|onnxruntime] [--segment none|vocab|jieba] [-n PROCESSES]
    python -m bilm import-elmoformanylangs --model zh.model --output DIR
    python -m bilm import-bilm-tf --options options.json --weights weights.hdf5 --output DIR
                                  [--token-embeddings vocab_embedding.hdf5 --vocab vocab.txt]
    python -m bilm export-bilm-tf --model DIR --output OUT_DIR
    python -m bilm import-fluid --checkpoint FLUID_DIR --vocab vocabulary_min5k.txt --output DIR
    python -m bilm cache-token-embeddings --model DIR --vocab VOCAB.txt --output EMB.hdf5

DIR is a model directory (`output/elmo/model`, an import) or any checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from engine.precision import add_precision_arguments, precision_options


def _parser(description: str, model_help: str = "model or checkpoint directory",
            threads: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if model_help:
        parser.add_argument("--model", required=True, help=model_help)
    if threads:
        parser.add_argument("--threads", type=int, default=2, help="CPU threads (0: all cores)")
    return parser


def _place(threads: int = 2):
    from engine.runtime import DistEnv, RuntimeConfig, setup

    return setup(RuntimeConfig(threads=threads), DistEnv())


def train(argv: list[str] | None = None) -> dict:
    """Pretrain the biLM: the engine's training command, with `configs/elmo.yaml` by default."""
    from engine.cli import train as train_job

    return train_job(argv, default_config="configs/elmo.yaml")


def evaluate(argv: list[str] | None = None) -> dict:
    """Perplexity of a biLM on a corpus (full softmax), beside the unigram perplexity of the same tokens."""
    parser = _parser(evaluate.__doc__)
    parser.add_argument("--input", required=True, help="glob of tokenized files, one sentence per line")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-steps", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    args = parser.parse_args(argv)

    import paddle

    from bilm.formats import load_model_variables, read_model_dir
    from bilm.lm import PerplexityEvaluator
    from bilm.model import SOFTMAX_WEIGHT
    from engine.errors import CheckpointError
    from reader.shards import resolve_shards

    place = _place(args.threads)
    cfg, vocab = read_model_dir(args.model)
    if not (Path(args.model) / SOFTMAX_WEIGHT).is_file():
        raise CheckpointError(f"{args.model} has no softmax (models imported from bilm-tf have none), "
                              "so it cannot compute perplexities")
    evaluator = PerplexityEvaluator(cfg, resolve_shards(args.input, "input"), vocab, args.batch_size,
                                    args.num_steps)
    load_model_variables(args.model, cfg, place)
    metrics = evaluator.run(paddle.static.Executor(place))
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"perplexity {metrics['ppl']:.2f} (forward {metrics['ppl_fw']:.2f}, backward "
              f"{metrics['ppl_bw']:.2f}) over {int(metrics['tokens']):,} tokens; "
              f"unigram perplexity of the same tokens {metrics['unigram_ppl']:.2f}")
    return metrics


def export(argv: list[str] | None = None) -> str:
    """Export a biLM as an inference program (OUT_DIR/elmo.json + .pdiparams, with its config and
    vocabulary): inputs `word_ids` [B,T] (`char_ids` [B,T,C] for a character model) and `lengths` [B],
    output `elmo_layers` [B, L+1, T, 2·P]; with --onnx also OUT_DIR/elmo.onnx for ONNX Runtime (paddle2onnx).
    Pretraining already exports at the end of a run."""
    parser = _parser(export.__doc__)
    parser.add_argument("--output", required=True, help="directory for the inference program")
    parser.add_argument("--max-length", type=int, default=None,
                        help="fixed number of words per input row (padded); unrolled, faster")
    parser.add_argument("--onnx", action="store_true", help="also write elmo.onnx (needs the [onnx] extra)")
    add_precision_arguments(parser, "text to measure --precision on: one sentence per line, tokenized as "
                                    "bilm dump reads it (the first 256 lines)")
    args = parser.parse_args(argv)
    floor = precision_options(parser, args)

    import paddle

    from bilm.embedder import check_sentences, export_inference_model, layer_check
    from bilm.formats import load_model_variables, read_model_dir
    from engine.inference import lower_precision
    from engine.precision import describe

    place = _place(args.threads)
    cfg, vocab = read_model_dir(args.model)
    load_model_variables(args.model, cfg, place, with_softmax=False)
    onnx = args.onnx or args.precision == "int8"  # int8 is the ONNX program quantized
    prefix = export_inference_model(paddle.static.Executor(place), args.output, cfg, vocab, args.max_length, onnx)
    print(f"exported {prefix}.json and {prefix}.pdiparams" + (f" and {prefix}.onnx" if onnx else ""))
    if args.precision != "fp32":
        # a fixed-length program takes no longer sentence, so the check set is cut to its length
        sentences = check_sentences([args.check_text], max_words=args.max_length or 64)
        record = lower_precision(prefix, args.precision, layer_check(cfg, vocab, sentences, max_length=args.max_length),
                                 floor, threads=args.threads)
        print(f"exported {Path(prefix).parent / record.file} ({record.precision})")
        print(f"{record.precision} {describe(record.check)}")
    return prefix


def dump(argv: list[str] | None = None) -> dict:
    """Write ELMo vectors of a text file to HDF5, as bilm-tf's `dump_bilm_embeddings`.

One whitespace-tokenized sentence per input line (a character model spells
every word; a word model maps unknown words to `<UNK>`); one dataset per line,
named by the line's 0-based index ("0", "1", …):
  all  (L+1, n_tokens, 2·P): the token layer [e ; e], then each LSTM layer
       as [forward ; backward] (bilm-tf's layout)
  top  (n_tokens, 2·P): the last LSTM layer
  mix  (n_tokens, 2·P): the average of all layers (ELMo's scalar mix before
       any task has trained its weights)
  or ELMoForManyLangs' output_layer numbers: -2 = all, -1 = mix, k = layer k
Every sentence starts from a zero state, so the lines are embedded in batches
of similar lengths (read --window lines at a time, at most --batch-size
sentences and --max-tokens padded tokens per batch): little padding. With
--stateful (bilm-tf's behaviour) consecutive lines go in fixed batch rows of
--batch-size, each row continuing from its state after the previous batch.
The file also holds `sentence_to_index` (AllenNLP's: a JSON string mapping
each sentence to its dataset's name). Input is streamed: memory stays bounded.
-n N embeds with N worker processes (not with --stateful), each on --threads
threads (default: the cores divided among them); the file is the same.
Raw text (Chinese, say): --segment vocab cuts each line into the model's
vocabulary words (forward maximum matching), --segment jieba uses jieba with
that vocabulary as its dictionary."""
    parser = _parser(dump.__doc__, "model directory (trained here or imported), or an export (bilm export: run "
                     "at the precision it records)", threads=False)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per process (default 2; with -n, the cores divided among the processes)")
    parser.add_argument("-n", "--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--input", required=True, help="text file, one tokenized sentence per line")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=256, help="sentences per batch (--stateful: rows)")
    parser.add_argument("--max-tokens", type=int, default=2048,
                        help="padded tokens per batch, boundaries included (not with --stateful)")
    parser.add_argument("--window", type=int, default=8192, help="lines read and sorted at a time")
    parser.add_argument("--stateful", action="store_true", help="carry LSTM states across batches (bilm-tf)")
    parser.add_argument("--layers", default="all",
                        help="all, top or mix (above); or ELMoForManyLangs' output_layer: -2 (all), -1 (the average: "
                             "its default), 0, 1, … (that layer alone)")
    parser.add_argument("--backend", choices=("auto", "paddle", "onnxruntime"), default="auto",
                        help="onnxruntime: convert the program to ONNX first (the [onnx] extra; 1.8x faster on "
                             "CPU here); auto (default): onnxruntime when the extra is installed, else paddle")
    parser.add_argument("--segment", choices=("none", "vocab", "jieba"), default="none",
                        help="raw text (Chinese): cut lines into the model's vocabulary words by forward maximum "
                             "matching (vocab) or with jieba (the [jieba] extra); none: split on whitespace")
    args = parser.parse_args(argv)
    for name in ("batch_size", "max_tokens", "window", "processes"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    from bilm.embedder import layer_mode

    args.layers = layer_mode(args.layers)
    if args.stateful and args.processes > 1:
        parser.error("--stateful carries each batch's state into the next: it runs in one process (no -n)")
    if args.threads is None:
        args.threads = 2 if args.processes == 1 else max(1, (os.cpu_count() or 1) // args.processes)
    from bilm.embedder import INFERENCE_PREFIX, is_export

    if is_export(args.model):  # served as exported, at the precision it records
        from engine.inference import serving_choice

        precision, args.backend = serving_choice(f"{args.model}/{INFERENCE_PREFIX}", "recorded", args.backend)
        runs = f"{precision}, {args.backend}"
    else:
        if args.backend == "auto":
            from engine.inference import fastest_backend

            args.backend = fastest_backend()
        runs = args.backend

    from tqdm import tqdm

    from bilm.embedder import ElmoEmbedder, dump_file, embedded_batches, embedded_batches_in_processes
    from bilm.formats import read_model_dir
    from reader.segment import Segmenter
    from reader.sentences import read_batches, sorted_batches

    cfg, vocab = read_model_dir(args.model)
    if isinstance(args.layers, int) and args.layers > cfg.num_layers:
        parser.error(f"--layers {args.layers}: the model has layers 0 (tokens) to {cfg.num_layers}")
    split = Segmenter(args.segment, vocab.tokens if args.segment != "none" else ())
    if args.stateful:
        batches = ((list(range(first, first + len(b))), b)
                   for first, b in read_batches(args.input, args.batch_size, split))
    else:
        batches = sorted_batches(args.input, args.max_tokens, args.batch_size, args.window, split)
    if args.processes > 1:
        embedded = embedded_batches_in_processes(args.model, batches, args.layers, args.processes, args.threads,
                                                 args.backend)
    else:
        embedder = ElmoEmbedder(args.model, stateful=args.stateful, max_batch_size=args.batch_size,
                                backend=args.backend, threads=args.threads)
        embedded = embedded_batches(embedder, batches, args.layers)
    total = sum(1 for _ in open(args.input, "rb")) if Path(args.input).is_file() else None
    with tqdm(total=total, unit="sent", disable=None) as bar:
        done = dump_file(embedded, args.output, bar.update)
    if done["blank_lines"]:
        print(f"note: {done['blank_lines']:,} blank line(s) written as datasets without tokens")
    print(f"wrote {done['sentences']:,} sentences ({done['tokens']:,} tokens) to {args.output} in "
          f"{done['seconds']:.1f} s ({done['tokens'] / max(done['seconds'], 1e-9):,.0f} tokens/s, {runs})")
    return done


def import_fluid(argv: list[str] | None = None) -> str:
    """Turn a checkpoint of the fluid ELMo release (one file per variable under the fluid names, no
config and no vocabulary: `elmo_chinese_checkpoint`, the `baike` one) into a model directory every
command here takes. Sizes and layer count come from the files' shapes; clips 3.0/3.0 and the state
carried across sentences, as the release trained. The softmax comes along when the checkpoint has it;
Adagrad moments and `learning_rate_0` are left out (listed)."""
    parser = _parser(import_fluid.__doc__, model_help="", threads=False)
    parser.add_argument("--checkpoint", required=True, help="the fluid checkpoint directory")
    parser.add_argument("--vocab", required=True, help="its vocabulary, one word per line (vocabulary_min5k.txt)")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)

    from bilm.formats import import_fluid as convert
    from engine.errors import listing

    done = convert(args.checkpoint, args.vocab, args.output)
    c = done.cfg
    softmax = "with" if Path(args.output, "softmax_weight").is_file() else "without"
    print(f"imported a {c.num_layers}-layer biLM (cell {c.hidden_size}, projection {c.embed_size}, vocabulary "
          f"{c.vocab_size:,}, {softmax} its softmax) into {args.output}")
    if done.left_out:
        print(f"left out (optimizer state, other files): {listing(done.left_out, 6)}")
    return args.output


def import_elmoformanylangs(argv: list[str] | None = None) -> str:
    """Import an ELMoForManyLangs model (HIT-SCIR's pretrained ELMo for 44 languages, Chinese among them:
a directory such as zh.model with config.json, word.dic, char.dic, token_embedder.pkl, encoder.pkl)
into a model directory every command here takes. Its architecture file is found as the package finds it
(the path config.json names, that name in the directory, or the package's own configs by name; the
package itself is not needed). The torch files are read without torch, in its zip or legacy format.
The model has no softmax (it is not published)."""
    parser = _parser(import_elmoformanylangs.__doc__, model_help="the ELMoForManyLangs model directory",
                     threads=False)
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)

    from bilm.manylangs import import_manylangs

    done = import_manylangs(args.model, args.output)
    c = done.cfg
    parts = {"word+char": f"words ({c.word_dim} wide) and characters", "char": "characters",
             "word": "words (projection folded into the table)"}[c.input]
    sizes = f"vocabulary {c.vocab_size:,}" if c.input != "char" else ""
    if c.spells:
        sizes += f"{', ' if sizes else ''}{c.char_cnn.num_characters:,} characters"
    print(f"imported a {c.num_layers}-layer biLM (cell {c.hidden_size}, projection {c.embed_size}, tokens from "
          f"{parts}: {sizes}) into {args.output}")
    print(f"config: {done.config_source}; torch files: "
          + ", ".join(f"{name} ({kind})" for name, kind in done.formats.items()))
    if done.renamed_words:
        print(f"note: {len(done.renamed_words)} dictionary token(s) a vocabulary line cannot hold were renamed "
              f"(whitespace-split text never produces them): {', '.join(done.renamed_words[:4])}")
    for note in done.notes:
        print(f"note: {note}")
    return args.output


def import_bilm_tf(argv: list[str] | None = None) -> str:
    """Import a bilm-tf / AllenNLP ELMo model into a model directory.

Without --token-embeddings the character encoder in weights.hdf5 is imported
(the published AllenNLP models): any word gets a vector, exactly as AllenNLP
computes it. With it, the import is word-level: the table replaces the
character encoder (whose weights are listed as not used) and unknown words
become <UNK>. The directory has no softmax (bilm-tf does not publish it)."""
    parser = _parser(import_bilm_tf.__doc__, model_help="", threads=False)
    parser.add_argument("--options", required=True, help="bilm-tf options.json")
    parser.add_argument("--weights", required=True, help="bilm-tf weights.hdf5")
    parser.add_argument("--token-embeddings",
                        help="HDF5 with dataset 'embedding', one row per vocabulary line (word-level import)")
    parser.add_argument("--vocab", help="vocabulary, one token per line (required with --token-embeddings)")
    parser.add_argument("--output", required=True, help="model directory to create")
    args = parser.parse_args(argv)
    if args.token_embeddings and not args.vocab:
        parser.error("--token-embeddings needs --vocab (its rows are the vocabulary's lines)")

    from bilm.formats import import_bilm_tf as convert

    cfg, unused = convert(args.options, args.weights, args.output, args.token_embeddings, args.vocab)
    tokens = (f"character encoder ({cfg.char_cnn.num_features} filters, {cfg.char_cnn.n_highway} highway)"
              if cfg.input == "char" else f"vocabulary {cfg.vocab_size:,}")
    print(f"imported a {cfg.num_layers}-layer biLM (cell {cfg.hidden_size}, projection {cfg.embed_size}, "
          f"{tokens}) into {args.output}")
    if unused:
        print(f"not used (word-level import): {len(unused)} character-encoder datasets "
              f"({', '.join(sorted(unused)[:4])}{', …' if len(unused) > 4 else ''})")
    return args.output


def export_bilm_tf(argv: list[str] | None = None) -> Path:
    """Export a model directory to the bilm-tf / AllenNLP format: options.json, weights.hdf5, vocab.txt
    (and token_embeddings.hdf5 for a word model). TF's cell adds 1.0 to the forget gate; models trained
    here have none, so it is taken out of the stored bias."""
    parser = _parser(export_bilm_tf.__doc__, threads=False)
    parser.add_argument("--output", required=True, help="directory for the bilm-tf files")
    args = parser.parse_args(argv)

    from bilm.formats import export_bilm_tf as convert

    written = convert(args.model, args.output)
    print(f"wrote {', '.join(written)} to {args.output}")
    return Path(args.output)


def cache_token_embeddings(argv: list[str] | None = None) -> dict:
    """Precompute a word-level token table from a character model (bilm-tf's `dump_token_embeddings`):
    dataset `embedding`, one row per vocabulary line. With the model's LSTM weights (export_bilm_tf, then
    import_bilm_tf --token-embeddings) it makes a faster word-level model with the same vectors for
    vocabulary words."""
    parser = _parser(cache_token_embeddings.__doc__, "character model directory")
    parser.add_argument("--vocab", required=True, help="vocabulary, one token per line (with <S>, </S>, <UNK>)")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--batch-size", type=int, default=1024, help="words per run of the encoder")
    args = parser.parse_args(argv)
    if args.batch_size <= 0:
        parser.error("--batch-size must be positive")

    import paddle

    from bilm.embedder import token_table
    from bilm.formats import load_model_variables, read_model_dir, write_token_embeddings
    from engine.atomic import atomic_file
    from engine.errors import ConfigError
    from reader.vocab import Vocabulary

    cfg, vocab = read_model_dir(args.model)
    if not cfg.spells:
        raise ConfigError(f"{args.model} is a word model: its token table is already the variable embedding_para")
    words = Vocabulary.load(args.vocab).tokens
    place = _place(args.threads)
    load_model_variables(args.model, cfg, place, with_softmax=False)
    table = token_table(paddle.static.Executor(place), cfg, vocab, words, args.batch_size)
    with atomic_file(args.output) as partial:
        write_token_embeddings(partial, table)
    print(f"wrote {len(words):,} token vectors of width {cfg.embed_size} to {args.output}")
    return {"rows": len(words), "width": cfg.embed_size}
