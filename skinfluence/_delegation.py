"""Method delegation of the meta-estimators to the estimator they wrap."""


def estimator_has(attr):
    """``available_if`` check: the fitted ``estimator_`` (else the given ``estimator``) has
    ``attr``."""
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)
    return check
