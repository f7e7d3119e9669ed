"""Vector indexes: `FaissIndex` (cosine FAISS search over an encoder's document/query paths) and
`read_corpus` (jsonl, CSV/TSV or a folder of .txt files into ids, texts and metadata). FAISS loads on first use."""

from ..readers import Corpus, read_corpus
from .faiss_index import EncoderMismatchError, FaissIndex, Hit, IndexFormatError, int_id
from .ids import DocRecord

__all__ = [
    "FaissIndex",
    "Hit",
    "DocRecord",
    "IndexFormatError",
    "EncoderMismatchError",
    "int_id",
    "Corpus",
    "read_corpus",
]
