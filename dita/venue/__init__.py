"""Venues: where the kernel's orders go."""

from dita.venue.base import SilentVenue, VenueAdapter
from dita.venue.mock import MockVenueAdapter

__all__ = ["MockVenueAdapter", "SilentVenue", "VenueAdapter"]
