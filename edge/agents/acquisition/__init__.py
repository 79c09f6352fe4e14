"""The DataAcquisitionAgent and its pure validator."""

from edge.agents.acquisition.agent import DataAcquisitionAgent, PendingMessage, ReadingsWriter
from edge.agents.acquisition.validation import ReadingValidator

__all__ = ["DataAcquisitionAgent", "PendingMessage", "ReadingValidator", "ReadingsWriter"]
