//! The server: network, request handlers (`KafkaApis`), replica manager, group coordinator and
//! configuration. Lands with the broker issue.
