"""An evaluation's result as text: the table `textgen evaluate` and `textgen status` print."""

from client.cli_io import num, table

_OOV_SHOWN = 10  # characters listed in a table cell; --json has them all


def evaluation_table(result):
    """An evaluation's rows as aligned columns, one model a line."""
    header = ["MODEL", "BITS/CHAR", "BITS/TOKEN", "CHARS", "TOKENS", "OOV", "NEVER SEEN",
              "NOTE"]
    rows = []
    for row in result["models"]:
        oov = row["oov"][:_OOV_SHOWN]
        shown = " ".join(repr(c) for c in oov) + (
            " ..." if len(row["oov"]) > len(oov) else "")
        rows.append([row["model_id"], num(row["bits_per_char"]), num(row["bits_per_token"]),
                     f"{row['chars_scored']:,}", f"{row['tokens_scored']:,}",
                     f"{row['oov_count']:,}", shown or None,
                     "trained on part of this text" if row["overlaps_training"] else None])
    return table(header, rows)
