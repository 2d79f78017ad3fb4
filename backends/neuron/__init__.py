"""The neuron backend (AWS Inferentia2 and Trainium through torch-neuronx).

Importing this package never imports torch or torch_neuronx; the backend does so in ``prepare``.
"""

from backends.neuron.backend import NeuronBackend

__all__ = ["NeuronBackend"]
