"""Method delegation of the meta-estimators to the fitted estimator they wrap."""

from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def estimator_has(attr):
    """``available_if`` check: the fitted ``estimator_`` (else the given ``estimator``) has
    ``attr``."""
    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(self.estimator, attr)
    return check


class DelegatesToEstimator:
    """``predict``, ``predict_proba``, ``predict_log_proba``, ``decision_function``,
    ``transform`` and ``score`` of the fitted ``estimator_``, each available when it has it.

    The class mixing this in defines ``_checked(X)``: ``X`` validated against the fitted
    columns.
    """

    @available_if(estimator_has("predict"))
    def predict(self, X):
        """Predictions of the fitted ``estimator_``."""
        check_is_fitted(self)
        return self.estimator_.predict(self._checked(X))

    @available_if(estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the fitted ``estimator_``."""
        check_is_fitted(self)
        return self.estimator_.predict_proba(self._checked(X))

    @available_if(estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Class log-probabilities of the fitted ``estimator_``."""
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(self._checked(X))

    @available_if(estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted ``estimator_``."""
        check_is_fitted(self)
        return self.estimator_.decision_function(self._checked(X))

    @available_if(estimator_has("transform"))
    def transform(self, X):
        """Transform with the fitted ``estimator_``."""
        check_is_fitted(self)
        return self.estimator_.transform(self._checked(X))

    @available_if(estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        """Score of the fitted ``estimator_`` (accuracy or R^2 for scikit-learn models)."""
        check_is_fitted(self)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return self.estimator_.score(self._checked(X), y, **kwargs)
