"""Named entity recognition with LUKE (CoNLL-2003): spans, context, decoding, scores (`data`), the job."""
