//! Table definitions shared by both backends (see `migrations/`).

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        email -> Text,
        avatar_url -> Nullable<Text>,
        role -> Text,
        is_active -> Bool,
        created_at -> BigInt,
        last_seen_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rooms (id) {
        id -> Text,
        name -> Text,
        is_public -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> Text,
        user_id -> Text,
        joined_at -> BigInt,
    }
}

diesel::table! {
    read_markers (room_id, user_id) {
        room_id -> Text,
        user_id -> Text,
        last_read_message_id -> Text,
        last_read_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        room_id -> Text,
        sender_id -> Text,
        text -> Text,
        reply_to_id -> Nullable<Text>,
        client_msg_id -> Nullable<Text>,
        created_at -> BigInt,
        edited_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    message_reactions (message_id, emoji, user_id) {
        message_id -> Text,
        emoji -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    direct_messages (id) {
        id -> Text,
        from_user_id -> Text,
        to_user_id -> Text,
        message -> Text,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    product_watchers (user_id, product_id) {
        user_id -> Text,
        product_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    cart_items (user_id, product_id) {
        user_id -> Text,
        product_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        payload -> Text,
        created_at -> BigInt,
        read_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhook_requests (path, idem_key) {
        path -> Text,
        idem_key -> Text,
        status -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    webhook_signatures (mac) {
        mac -> Text,
        t -> BigInt,
    }
}

diesel::table! {
    sse_tickets (ticket_hash) {
        ticket_hash -> Text,
        user_id -> Text,
        token_exp -> Nullable<BigInt>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    outbound_events (id) {
        id -> Text,
        event_key -> Text,
        seq -> BigInt,
        body -> Text,
        created_at -> BigInt,
        attempts -> Integer,
        next_at -> BigInt,
        owner -> Text,
        lease_until -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(room_members -> users (user_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(messages -> users (sender_id));
diesel::joinable!(message_reactions -> messages (message_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    rooms,
    room_members,
    read_markers,
    messages,
    message_reactions,
    direct_messages,
    product_watchers,
    cart_items,
    notifications,
    webhook_requests,
    webhook_signatures,
    sse_tickets,
    outbound_events,
);
