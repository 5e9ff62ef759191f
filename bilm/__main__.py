"""`python -m bilm VERB [flags]`: the biLM's commands (`python -m bilm --help` lists them)."""

from engine.command import dispatch, quiet

quiet()

VERBS = {
    "train": ("bilm.cli:train", "pretrain a biLM (the engine's training command, configs/elmo.yaml by default)"),
    "evaluate": ("bilm.cli:evaluate", "perplexity of a model on a corpus, beside the unigram perplexity"),
    "export": ("bilm.cli:export", "an inference program for paddle.inference (and ONNX Runtime with --onnx)"),
    "dump": ("bilm.cli:dump", "ELMo vectors of a text file into HDF5 (bilm-tf's dump_bilm_embeddings)"),
    "import_bilm_tf": ("bilm.cli:import_bilm_tf", "a bilm-tf / AllenNLP model (options.json, weights.hdf5)"),
    "export_bilm_tf": ("bilm.cli:export_bilm_tf", "a model directory in the bilm-tf / AllenNLP format"),
    "import_elmoformanylangs": ("bilm.cli:import_elmoformanylangs",
                                "an ELMoForManyLangs model (zh.model, …: its pretrained ELMo for 44 languages)"),
    "import_fluid": ("bilm.cli:import_fluid", "a checkpoint of the fluid ELMo release (the baike model)"),
    "cache_token_embeddings": ("bilm.cli:cache_token_embeddings",
                               "a character model's word table for a vocabulary (faster word model)"),
}

if __name__ == "__main__":
    dispatch("bilm", VERBS)
