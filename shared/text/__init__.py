"""Text: uploaded bytes to corpus text (corpus_text.py), a Project Gutenberg fetch
(gutenberg.py), and corpus or prompt to what a model reads (textprep.py)."""
