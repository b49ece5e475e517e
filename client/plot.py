"""`textgen plot`: a training job's losses per epoch as a PNG (matplotlib, Agg: no display
needed). Imported by that command only: matplotlib takes a second to load."""

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt  # noqa: E402

_SIZE_IN = (7.0, 6.0)  # figure width, height in inches; at 120 dpi 840 x 720 pixels
_DPI = 120


def plot_losses(job, epochs, output):
    """Training and validation loss (nats per token) above, bits per token below, from the
    job's epoch_end events (`epochs`: their data, oldest first)."""
    level = ((job.get("spec") or {}).get("preprocessing") or {}).get("level", "char")
    unit = "character" if level == "char" else "token"
    numbers = [e["epoch"] for e in epochs]
    figure, (losses, bits) = plt.subplots(2, 1, sharex=True, figsize=_SIZE_IN,
                                          height_ratios=(2, 1))
    try:
        validated = any(e.get("val_loss") is not None for e in epochs)
        losses.plot(numbers, [e.get("loss") for e in epochs], "o-", label="training")
        if validated:
            losses.plot(numbers, [e.get("val_loss") for e in epochs], "s-",
                        label="validation")
        losses.set_ylabel(f"loss (nats per {unit})")
        losses.set_title(f"{job['id']} ({job['spec'].get('preset')} preset)")
        losses.legend()
        losses.grid(alpha=0.3)
        bits.plot(numbers, [e.get("bits_per_char" if level == "char" else "bits_per_token")
                            for e in epochs], "o-", color="tab:green")
        # The API's bits per token come from the validation loss when there is one.
        bits.set_ylabel(f"bits per {unit}" + (" (validation)" if validated else ""))
        bits.set_xlabel("epoch")
        bits.grid(alpha=0.3)
        bits.xaxis.get_major_locator().set_params(integer=True)
        figure.tight_layout()
        figure.savefig(output, dpi=_DPI, format="png")
    finally:
        plt.close(figure)
