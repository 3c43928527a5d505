"""scikit-learn's estimator interface for every model, as a thin layer over ``refvae.fit``; no scikit-learn needed.

A model that derives from :class:`Estimator` has, besides its own methods:

    fit(X, y=None)            ->  a fresh model of X's width (parameters from ``seed``), then refvae.fit(model, X, ...)
    partial_fit(X, y=None)    ->  one pass over X in minibatches of ``batch_size`` (refvae.train.train_step)
    transform(X)              ->  the model's features of X (posterior means), (n, n_features_out) NumPy
    score_samples(X)          ->  log p(x) per row, (n,) NumPy: the model's likelihood, exact or estimated
    score(X, y=None)          ->  the mean of score_samples
    get_params() / set_params(**settings)   the constructor's arguments, as given

The layer's conventions (scikit-learn's, ``sklearn.base.BaseEstimator``), and where this project differs:

* The data width may be left to ``fit``: a model built with its width argument None (``BernoulliRBM(n_hidden=64)``)
  learns it from the first ``fit`` or ``partial_fit`` (``n_features_in_``); a model built with its width is ready
  at once, its parameters the seed's initial ones (as the model's own methods have always had them).
* ``fit`` starts again every time: the model becomes the one its constructor builds from its arguments (and X's
  width), then trains for ``epochs`` epochs of ``batch_size`` with the model's optimiser at ``learning_rate``;
  ``seed`` seeds everything (scikit-learn's ``random_state``, an int only), so the same call gives the same model.
  The history is ``history_``. ``partial_fit`` continues from the model as it is (with its optimiser's moments).
* Queries (``transform``, ``score_samples``, ``score``) never write onto the model: an estimate that draws random
  numbers draws them from a fresh generator seeded by ``seed``, so the same query gives the same answer.
* They take any array-like (n, width) and return host NumPy arrays in the model's dtype, whatever the backend.
* ``set_params`` validates at once (a model is valid from its construction, the project's rule): it builds the
  model the new arguments describe and raises, leaving the model unchanged, if they are wrong. Changing only how
  the model is trained (``epochs``, ``batch_size``, ``learning_rate``) keeps what it has learned; changing the
  model itself makes it that new model, its parameters the seed's initial ones again. ``set_params(arrays)``
  with one dict (positionally) keeps its older meaning: replace the parameter arrays (checkpoints, ``fit``).
* The models keep their state in public attributes (``params``, ``rng``, chains) that the core's ``fit`` and the
  checkpoints read; scikit-learn would have it in attributes ending in ``_``.

A model provides ``_data_width()`` (None until known), ``_new_optimizer()``, ``_transform(X)`` and
``_score_samples(X)`` (backend arrays in and out, X validated), and its constructor calls
``self._keep_arguments(locals())`` first. It may change ``_width_argument`` (the name of its width argument; or
``_given_width`` and ``_arguments_with_width`` when the width is part of one, as the Helmholtz machine's
``layer_sizes``), ``_start_training(X)`` (done to a fresh model before ``fit``), ``_unit_interval_data()`` and
``_min_fit_rows``.
"""

from __future__ import annotations

import math
import numbers

from .backend import get_backend
from .validation import check_positive_int

__all__ = ["Estimator", "NotFittedError", "TRAINING_SETTINGS", "check_training_settings"]

#: The constructor arguments that say how ``fit`` trains, not what the model is.
TRAINING_SETTINGS = ("epochs", "batch_size", "learning_rate")
# Random streams beside refvae.fit's (seed, epoch, 0..5): the n-th partial_fit's rng((seed, n, 6)), a query's
# rng((seed, 0, 7)).
_PARTIAL_FIT_STREAM, _QUERY_STREAM = 6, 7


class NotFittedError(ValueError, AttributeError):
    """The model does not know its data width yet: call ``fit`` (scikit-learn's exception has the same bases)."""


def check_training_settings(epochs, batch_size, learning_rate) -> tuple:
    """(epochs, batch_size, learning_rate) checked: positive integers and a positive finite float."""
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) \
            or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive finite number, got {learning_rate!r}")
    return epochs, batch_size, learning_rate


class Estimator:
    """fit, partial_fit, transform, score_samples, score, get_params and set_params over a model (see the module)."""

    _width_argument = "x_dim"
    _min_fit_rows = 1            # examples fit needs (the VAE's epoch diagnostics measure a spread: 2)

    def _keep_arguments(self, arguments: dict) -> None:
        """Remember the constructor's arguments as given (``get_params`` returns them, unchanged)."""
        self._arguments = {name: value for name, value in arguments.items() if name not in ("self", "__class__")}

    # ----------------------------------------------------------------------------------------------
    # Parameters
    # ----------------------------------------------------------------------------------------------
    def get_params(self, deep=True) -> dict:
        """The constructor's arguments as they were given (``deep`` is scikit-learn's: these hold no estimators)."""
        return dict(self._arguments)

    def set_params(self, arrays=None, /, **settings):
        """``set_params(**settings)``: new constructor arguments (see the module); ``set_params(arrays)``: replace the
        parameter arrays by copies of those of the dict ``arrays`` (same names and shapes). Returns the model."""
        if arrays is not None:
            if settings:
                raise TypeError("set_params takes parameter arrays (one dict) or settings (keywords), not both")
            self.set_param_arrays(arrays)
            return self
        unknown = sorted(set(settings) - set(self._arguments))
        if unknown:
            raise ValueError(f"invalid parameter {unknown[0]!r} for {type(self).__name__}: valid parameters are "
                             f"{', '.join(sorted(self._arguments))}")
        if not settings:
            return self
        try:
            model = type(self)(**{**self._arguments, **settings})   # validates; raises with self unchanged
        except OverflowError as err:                                # int(inf)
            raise ValueError(f"invalid setting for {type(self).__name__}: {err}") from None
        if set(settings) <= set(TRAINING_SETTINGS) and self._data_width() is not None:
            for name in settings:
                setattr(self, name, getattr(model, name))
            self._arguments = model._arguments
        else:
            self._become(model, model._arguments)
        return self

    def _become(self, model, arguments) -> None:
        """Take over the state of ``model`` (a new model of this class), keeping ``arguments`` as the given ones and
        dropping what training left (attributes that others set, such as a scikit-learn pipeline's, stay)."""
        for name in ("history_", "_optimizer", "_partial_fits"):
            vars(self).pop(name, None)
        vars(self).update(vars(model))
        self._arguments = arguments

    @property
    def n_features_in_(self) -> int:
        """The data width (scikit-learn's name); an AttributeError until the model knows it."""
        width = self._data_width()
        if width is None:
            raise AttributeError(f"{type(self).__name__} has no n_features_in_ yet: it learns the data width at "
                                 "its first fit")
        return width

    def __getstate__(self) -> dict:
        """For pickle (scikit-learn's joblib workers, copies): the state without the array namespace, a module (the
        backend is pickled by its name; the arrays as they are)."""
        state = dict(vars(self))
        state.pop("xp", None)
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self.xp = self.backend.xp

    def __sklearn_is_fitted__(self) -> bool:
        return self._data_width() is not None

    # ----------------------------------------------------------------------------------------------
    # Training
    # ----------------------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train a fresh model on X (n, width): see the module. ``y`` is ignored. Returns the model."""
        from .train import fit

        X = self._estimator_input(X, learn_width=self._given_width() is None)
        if X.shape[0] < self._min_fit_rows:
            raise ValueError(f"{type(self).__name__}.fit needs at least {self._min_fit_rows} examples, got "
                             f"n_samples={X.shape[0]}: pass more rows (partial_fit takes any number)")
        X = self._start_afresh(X)
        self._optimizer, self._partial_fits = self._new_optimizer(), 0
        self.history_ = fit(self, X, epochs=self.epochs, batch_size=self.batch_size, optimizer=self._optimizer,
                            seed=self.seed, progress=False)
        return self

    def partial_fit(self, X, y=None):
        """One pass over X (n, width) in a random order, minibatches of ``batch_size``, continuing from the model as
        it is (a model that does not know its width yet starts as ``fit`` would). Returns the model."""
        from .train import train_step

        if self._data_width() is None:
            X = self._start_afresh(self._estimator_input(X, learn_width=True))
        else:
            X = self._estimator_input(X)
        if getattr(self, "_optimizer", None) is None:
            self._optimizer, self._partial_fits = self._new_optimizer(), 0
        rng = get_backend().rng((self.seed, self._partial_fits, _PARTIAL_FIT_STREAM))
        if hasattr(self, "init_training_state"):
            self.init_training_state(self.batch_size, rng)
        n = X.shape[0]
        order = rng.permutation(n)
        for start in range(0, n, self.batch_size):
            batch = self.xp.take(X, order[start:start + self.batch_size], axis=0)
            train_step(self, self._optimizer, batch, rng, f"partial_fit call {self._partial_fits + 1}")
        self._partial_fits += 1
        return self

    def _start_afresh(self, X):
        """Become the model the constructor builds for X's width (parameters from ``seed``), prepared for its first
        step on X (``_start_training``); returns X checked by it."""
        self._become(type(self)(**self._arguments_with_width(X.shape[1])), self._arguments)
        X = self.validate_data(X, "X")
        self._start_training(X)
        return X

    def _start_training(self, X) -> None:
        """What a model does to a fresh model before its first training step on X (e.g. an RBM's visible biases)."""

    def _given_width(self):
        """The data width the constructor was given, None if it is to be learnt at fit."""
        return self._arguments[self._width_argument]

    def _arguments_with_width(self, width: int) -> dict:
        """The constructor arguments with the data width filled in where it was None."""
        if self._given_width() is not None:
            return dict(self._arguments)
        return {**self._arguments, self._width_argument: width}

    # ----------------------------------------------------------------------------------------------
    # Queries
    # ----------------------------------------------------------------------------------------------
    def transform(self, X):
        """The model's features of X (n, width): (n, n_features_out) NumPy array (see the model's ``_transform``)."""
        return self.backend.to_numpy(self._transform(self._estimator_input(X)))

    def fit_transform(self, X, y=None):
        """``fit(X)``, then ``transform(X)``."""
        return self.fit(X).transform(X)

    def score_samples(self, X):
        """log p(x) per row of X (n, width): (n,) NumPy array, exact or estimated (see the model's
        ``_score_samples``); an estimate draws from a fresh generator seeded by ``seed``."""
        return self.backend.to_numpy(self._score_samples(self._estimator_input(X)))

    def score(self, X, y=None) -> float:
        """The mean log-likelihood per row of X, nats (as scikit-learn's density models' ``score``)."""
        return float(self.score_samples(X).mean())

    def _query_rng(self):
        """The generator of a query's estimate: fresh, seeded by ``seed``, never the model's own ``rng``."""
        return self.backend.rng((self.seed, 0, _QUERY_STREAM))

    def _estimator_input(self, X, learn_width=False):
        """X as the model's checked backend array (n, width), scikit-learn's message for a wrong width; with
        ``learn_width`` (a model that learns its width from X), X with its shape checked only."""
        import numpy as np

        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            raise TypeError(f"{type(self).__name__} takes dense data: pass X.toarray() for a sparse matrix")
        if not hasattr(X, "shape") or hasattr(X, "iloc"):
            X = np.asarray(X)
        width = None if learn_width else self._data_width()
        if width is None and not learn_width:
            raise NotFittedError(f"this {type(self).__name__} does not know its data width yet: call fit(X) first")
        if X.ndim == 2 and width is not None and X.shape[1] != width:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {width} features "
                             f"as input: pass data of shape (n, {width})")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got shape {tuple(X.shape)}: Reshape "
                             "your data (one example: X.reshape(1, -1))")
        if X.shape[1] == 0:
            raise ValueError(f"0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is required: pass data "
                             "with at least one column")
        return X if learn_width else self.validate_data(X, "X")

    def __sklearn_tags__(self):
        """scikit-learn's tags (only scikit-learn calls this, so only then is it imported): an unsupervised
        transformer whose input must lie in [0, 1] for a Bernoulli model (``positive_only`` is the nearest tag) and
        whose output has the model's dtype."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=[self.dtype_name]),
                    input_tags=InputTags(positive_only=self._unit_interval_data()), requires_fit=True)

    def _unit_interval_data(self) -> bool:
        return True
