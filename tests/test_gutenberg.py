from client.gutenberg import strip_gutenberg

BOOK = """The Project Gutenberg eBook of Frankenstein
This eBook is for the use of anyone anywhere...

*** START OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN; OR, THE MODERN PROMETHEUS ***

Letter 1

You will rejoice to hear...

*** END OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN; OR, THE MODERN PROMETHEUS ***

Section 1. General Terms of Use and Redistributing Project Gutenberg...
"""


def test_strips_header_and_licence():
    body = strip_gutenberg(BOOK)
    assert body == "Letter 1\n\nYou will rejoice to hear...\n"


def test_text_without_markers_is_kept():
    assert strip_gutenberg("just a text\n") == "just a text\n"
