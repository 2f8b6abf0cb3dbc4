//! WebSocket streams (to be written).
