"""Activities (tider och aktiviteter): visits, calls and tests, their reminders and .ics feed."""
