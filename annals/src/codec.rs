//! The stored form of an event body: an enum variant's content without the enum tag.
//!
//! Rather than generating a helper struct per variant, the derive relies on the user's own
//! `Serialize`/`Deserialize` impls and these two adapters: one serializer that writes only the
//! content of whichever variant it is handed, and one deserializer that presents a bare body as
//! the content of a named variant. So every serde attribute on fields keeps working, and a
//! current-version body deserializes straight from its bytes into the enum. The rest of what
//! the generated decoders call (errors, upcaster steps, snapshots) is here too; the derive
//! reaches all of it through `__private`, which only re-exports.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor,
};
use serde::ser::{self, Impossible, Serialize, Serializer};
use serde::Deserialize as _;

use crate::event::{DecodeError, EncodeError, Payload};

/// Encodes the body of `event` (an externally tagged enum) as JSON.
pub fn encode_body<E: Serialize>(
    event: &E,
    event_type: &'static str,
    schema_version: u32,
) -> Result<Payload, EncodeError> {
    Payload::from_value(&Body(event)).map_err(|source| EncodeError {
        event_type,
        schema_version,
        source,
    })
}

/// Decodes `payload` as the content of the enum variant named `variant`.
pub fn decode_body<E: de::DeserializeOwned>(
    variant: &'static str,
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<E, DecodeError> {
    let mut json = serde_json::Deserializer::from_str(payload);
    E::deserialize(VariantBody {
        variant,
        body: &mut json,
    })
    .and_then(|event| json.end().map(|()| event))
    .map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// Decodes a JSON value (the output of an upcaster) as the content of the variant `variant`.
pub fn decode_value<E: de::DeserializeOwned>(
    variant: &'static str,
    event_type: &str,
    schema_version: u32,
    value: serde_json::Value,
) -> Result<E, DecodeError> {
    E::deserialize(VariantBody {
        variant,
        body: value,
    })
    .map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

struct Body<'a, E>(&'a E);

impl<E: Serialize> Serialize for Body<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(ContentOnly(serializer))
    }
}

fn not_an_enum<E: ser::Error>() -> E {
    E::custom("an event must be an externally tagged enum variant (no `#[serde(tag, untagged)]`)")
}

/// A serializer that accepts one enum variant and writes only its content.
struct ContentOnly<S>(S);

/// Writes a struct variant's fields as a plain struct.
struct StructContent<S>(S);

/// Writes a tuple variant's fields as a plain tuple.
struct TupleContent<S>(S);

impl<S: ser::SerializeStruct> ser::SerializeStructVariant for StructContent<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: ser::SerializeTuple> ser::SerializeTupleVariant for TupleContent<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

macro_rules! reject {
    ($($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<S::Ok, S::Error> {
                Err(not_an_enum())
            }
        )*
    };
}

impl<S: Serializer> Serializer for ContentOnly<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = TupleContent<S::SerializeTuple>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = StructContent<S::SerializeStruct>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self.0)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple(len).map(TupleContent)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct(variant, len).map(StructContent)
    }

    reject! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_an_enum())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(not_an_enum())
    }
}

/// A deserializer that presents `body` as the content of the enum variant `variant`.
struct VariantBody<D> {
    variant: &'static str,
    body: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for VariantBody<D> {
    type Error = D::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom(
            "an event must be an externally tagged enum (no `#[serde(tag, untagged)]`)",
        ))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for VariantBody<D> {
    type Error = D::Error;
    type Variant = Content<D>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Content<D>), D::Error> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, Content(self.body)))
    }
}

/// The content of the variant chosen by [`VariantBody`].
struct Content<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for Content<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        // A unit variant is written as `null`; accept any value, as `{}` from other writers.
        de::IgnoredAny::deserialize(self.0).map(|_| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct("", fields, visitor)
    }
}

// What the generated decoders call besides the adapters above: errors, upcaster steps and
// snapshots.

/// The error for a stored type name no variant has.
pub fn unknown_type(event_type: &str, schema_version: u32) -> DecodeError {
    DecodeError::UnknownType {
        event_type: event_type.to_owned(),
        schema_version,
    }
}

/// The error for a stored schema version the code cannot decode: newer than `current`, or
/// older with no upcaster.
pub fn unsupported_version(event_type: &str, schema_version: u32, current: u32) -> DecodeError {
    if schema_version > current {
        DecodeError::FutureVersion {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        }
    } else {
        DecodeError::NoUpcaster {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn upcast_failed(event_type: &str, from: u32, source: BoxError) -> DecodeError {
    DecodeError::Upcast {
        event_type: event_type.to_owned(),
        from,
        source,
    }
}

/// Parses a stored body into a JSON value: the input of a JSON upcaster.
pub fn body_value(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<serde_json::Value, DecodeError> {
    serde_json::from_str(payload).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// The result of the JSON upcaster that starts from version `from`.
pub fn upcast_step<E: Into<BoxError>>(
    event_type: &str,
    from: u32,
    result: Result<serde_json::Value, E>,
) -> Result<serde_json::Value, DecodeError> {
    result.map_err(|e| upcast_failed(event_type, from, e.into()))
}

/// Deserializes the stored body of version `schema_version` into its typed form `T`.
pub fn typed_body<T: serde::de::DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(payload).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// Deserializes a JSON value (the output of a JSON upcaster) into the typed form `T` of
/// version `schema_version`.
pub fn typed_from_value<T: serde::de::DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    value: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(value).map_err(|source| DecodeError::Body {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
}

/// The typed upcaster that starts from version `from`: `U::try_from(value)`.
pub fn typed_step<T, U>(event_type: &str, from: u32, value: T) -> Result<U, DecodeError>
where
    U: TryFrom<T>,
    U::Error: Into<BoxError>,
{
    U::try_from(value).map_err(|e| upcast_failed(event_type, from, e.into()))
}

/// Encodes an aggregate's state for a snapshot.
pub fn encode_snapshot<T: serde::Serialize>(
    state: &T,
) -> Option<Result<Payload, serde_json::Error>> {
    Some(Payload::from_value(state))
}

/// Decodes an aggregate's state from a snapshot.
pub fn decode_snapshot<T: serde::de::DeserializeOwned>(
    state: &Payload,
) -> Option<Result<T, serde_json::Error>> {
    Some(serde_json::from_str(state.as_str()))
}
