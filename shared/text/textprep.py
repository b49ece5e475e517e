"""Text preparation: what a corpus (or a prompt) becomes before it is turned into tokens.

Shared: the worker prepares corpora and prompts, and the API checks a prompt's characters
against a model before it accepts a generation job. NLTK is imported only when the
tutorial mode needs it, so the API starts without it.

Two modes (see shared.contracts.specs.PreprocessingSpec):

- `raw`: the text as uploaded.
- `tutorial`: the Stack Abuse Keras tutorial's preprocessing, exactly: lowercase, NLTK
  `RegexpTokenizer(r'\\w+')` tokens, NLTK English stopwords removed, tokens joined by single
  spaces. On Frankenstein (Gutenberg, frankenstein-2.txt) this gives 80,617 characters.

Either mode's output then goes to worker.vocab at the spec's level. At word level, the
tutorial's output splits back into its own \\w+ tokens (the word tokenizer keeps \\w+ runs
whole), so that combination is the tutorial's words, one token each.
"""

import io
import logging
import threading

from shared.contracts.errors import NltkDataMissingError, ValidationError

log = logging.getLogger(__name__)

# How long one attempt to fetch the stopwords may take, in seconds. NLTK's own network
# timeout is 120 s per read, and DNS lookups have none, so a worker without network could
# otherwise stall a job for minutes before failing with the message that names the fix.
DOWNLOAD_TIMEOUT_S = 20.0

_FIX = (
    "NLTK's English stopwords are not installed: run `python -m nltk.downloader stopwords` "
    "on the worker, or set NLTK_DATA to a directory containing corpora/stopwords"
)


def prepare_text(text, mode):
    """Return `text` prepared in `mode` (a spec's `preprocessing.mode`)."""
    if mode == "raw":
        return text
    if mode == "tutorial":
        stopwords = _english_stopwords()
        return " ".join(t for t in tutorial_tokens(text) if t not in stopwords)
    raise ValidationError(f"unknown preprocessing mode {mode!r}", field="preprocessing.mode")


def tutorial_tokens(text):
    """The tutorial's tokens of `text`, before its stopwords are removed."""
    from nltk.tokenize import RegexpTokenizer

    return RegexpTokenizer(r"\w+").tokenize(text.lower())


def prepared_characters(text, mode):
    """The characters `text` can contribute once prepared in `mode` (a superset in
    tutorial mode: removing stopwords can only drop some). No NLTK data needed."""
    if mode == "tutorial":
        tokens = tutorial_tokens(text)
        return set("".join(tokens)) | ({" "} if len(tokens) > 1 else set())
    return set(text)


def _english_stopwords():
    import nltk

    try:
        return set(nltk.corpus.stopwords.words("english"))
    except LookupError:
        log.warning("NLTK stopwords missing; trying to download them once")
    if not _download_stopwords():
        raise NltkDataMissingError(_FIX)
    try:
        return set(nltk.corpus.stopwords.words("english"))
    except LookupError as e:
        raise NltkDataMissingError(_FIX) from e


def _download_stopwords():
    """Try `nltk.download('stopwords')` for at most DOWNLOAD_TIMEOUT_S; True if it worked.

    The download runs in a daemon thread because NLTK offers no overall deadline; a thread
    still stuck after the timeout is abandoned (it holds no lock of ours and dies with the
    process).
    """
    import nltk

    result = {}
    errors = io.StringIO()  # NLTK prints its errors; log them instead of writing to stderr

    def download():
        result["ok"] = nltk.download("stopwords", quiet=True, raise_on_error=False,
                                     print_error_to=errors)

    thread = threading.Thread(target=download, name="nltk-download", daemon=True)
    thread.start()
    thread.join(DOWNLOAD_TIMEOUT_S)
    if thread.is_alive():
        log.warning("NLTK stopwords download still running after %.0f s; giving up",
                    DOWNLOAD_TIMEOUT_S)
        return False
    if not result.get("ok"):
        log.warning("NLTK stopwords download failed: %s", " ".join(errors.getvalue().split()))
        return False
    return True
