//! The bridge between Socket.IO packets and Engine.IO messages, for the configured parser.

use engineio::{Frame, Message};

use crate::config::ParserKind;
use crate::error::ParseError;
use crate::packet::Packet;
use crate::parser::json::{self, JsonDecoder, ParserLimits};
use crate::parser::msgpack;

/// A connection's decoder: the JSON one holds the state of a binary packet waiting for its
/// attachments.
pub(crate) enum Decoder {
    Json(Box<JsonDecoder>),
    Msgpack,
}

impl Decoder {
    pub(crate) fn new(parser: ParserKind, limits: ParserLimits) -> Self {
        match parser {
            ParserKind::Json => Self::Json(Box::new(JsonDecoder::new(limits))),
            ParserKind::Msgpack => Self::Msgpack,
        }
    }

    /// One Engine.IO message in; a packet out once complete.
    pub(crate) fn decode(&mut self, message: Message) -> Result<Option<Packet>, ParseError> {
        match self {
            Self::Json(decoder) => match message {
                Message::Text(text) => decoder.decode_text(&text),
                Message::Binary(data) => decoder.decode_binary(data),
            },
            Self::Msgpack => match message {
                Message::Binary(data) => msgpack::decode(&data).map(Some),
                // socket.io-msgpack-parser only takes binary messages.
                Message::Text(_) => Err(ParseError::InvalidMsgpack("text message")),
            },
        }
    }
}

/// Encodes a packet once into the Engine.IO frames that carry it (DESIGN.md rule 1): the text
/// packet then its attachments, or one msgpack message. Recipients share these frames.
pub(crate) fn encode(parser: ParserKind, packet: &Packet) -> Vec<Frame> {
    match parser {
        ParserKind::Json => {
            let encoded = json::encode(packet);
            let mut frames = Vec::with_capacity(1 + encoded.attachments.len());
            frames.push(Frame::text(&encoded.text));
            frames.extend(encoded.attachments.into_iter().map(Frame::binary));
            frames
        }
        ParserKind::Msgpack => vec![Frame::binary(msgpack::encode(packet))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn json_binary_event_is_one_item_of_three_frames() {
        let data = Value::Array(vec![
            Value::from("bin"),
            Value::Binary(vec![1, 2, 3]),
            Value::Binary(vec![4]),
        ]);
        let frames = encode(ParserKind::Json, &Packet::event("/", data));
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[0],
            Frame::text(
                r#"52-["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
            )
        );
        assert_eq!(frames[1], Frame::binary(vec![1u8, 2, 3]));
    }
}
