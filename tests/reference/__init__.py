"""Independent re-implementations of the seeds' reference code, for the equivalence tests.

Each module here is written from reading an author's released code (cited by file:line), not
from this library: it computes the reference's forward the way the reference does (its own
comparisons, resets, surrogates and read-outs), so that the ``tests/test_reference_*.py`` files
check our presets against the authors' behaviour and not against our own formulas. For example:

* :mod:`reference.datsqn`: Ghoreishee et al. 2025 (``github.com/Aref7792/DATSQN``, folder
  ``DATSQN_DTSQN_DSQN/``): the DATSQN, DTSQN and binary DSQN Q-networks;
* :mod:`reference.dsqn_spikingjelly`: Chen et al. 2022's DSQN as spikingjelly's example builds it
  (``spikingjelly/activation_based/examples/DSQN/``).

They take explicit inputs (spikes, or a frame and a uniform noise tensor) so that both sides of a
test see identical input, and copy their weights from / to a plain ``{name: tensor}`` dict.

Tests import them as ``from reference.datsqn import ...`` (pytest puts ``tests/`` on ``sys.path``,
as for ``conftest``).
"""
