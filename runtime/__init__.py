"""The composition root shared by HTTP, the command line and the worker: settings, the Engine
(built once, concrete types), the SLA ticker and the other background loops."""
