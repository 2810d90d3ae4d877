DROP TABLE sse_tickets;
