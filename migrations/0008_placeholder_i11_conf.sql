-- Placeholder: keeps the numbering contiguous on branch i11-conf; the integrator
-- renumbers 0009 onto whatever 0007/0008 main has by then. Does nothing.
SELECT 1;
