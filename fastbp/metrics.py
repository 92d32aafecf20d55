"""The History that ``fit`` returns."""


class History:
    """Per-epoch logs, as Keras: ``history.history["loss"]`` is a list with one value per epoch."""

    def __init__(self):
        self.epoch = []
        self.history = {}

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
