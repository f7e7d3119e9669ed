"""Bridges to the libraries embedding users already run: sentence-transformers, MTEB and fastembed.

- `sentence_transformers_module`: the first module of a saved MoTE folder when it is opened with
  `SentenceTransformer(folder, trust_remote_code=True)`; routes each text by `task`.
- `st_folder`: the sentence-transformers files `MoTEModel.save_pretrained` writes beside the weights
  (modules.json, config_sentence_transformers.json, 1_Pooling/, 2_Normalize/); `model_card`: its README.md.
- `mteb_model`: `MTEBEncoder`, mteb's encoder protocol over any mote-rag encoder; `mteb_tasks`: local MTEB tasks.
fastembed lives with the torch-free runtime: `mote_rag.runtime.fastembed_models`.
Each module imports its library only when used; nothing here is imported by `import mote_rag`.
"""
