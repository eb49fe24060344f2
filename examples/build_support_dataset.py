"""Build the bundled Harbor Bikes customer-support dataset from one table of facts.

Every question about a fact gets the same canonical answer (one per language), so a small model can learn
the facts. Run from the repo root to regenerate the files next to this script:

    python examples/build_support_dataset.py
"""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM = "You are the customer support assistant of Harbor Bikes. Answer briefly and accurately."

# fact id -> (English answer, Chinese answer, English training questions, Chinese training questions,
#             English held-out questions, Chinese held-out questions)
FACTS: list[tuple[str, str, list[str], list[str], list[str], list[str]]] = [
    (
        "Harbor Bikes sells three e-bikes: the Harbor City ($1,299), the Harbor Trail ($1,849) and the "
        "Harbor Fold ($999).",
        "Harbor Bikes 销售三款电动自行车：Harbor City（1,299 美元）、Harbor Trail（1,849 美元）和 "
        "Harbor Fold（999 美元）。",
        ["What bikes do you sell?", "Which e-bike models do you have?",
         "Can you list your electric bikes?", "What is in your product lineup?"],
        ["你们卖哪些自行车？", "你们有哪些电动自行车型号？"],
        ["What models of electric bicycle are available from you?"],
        ["请介绍一下你们的产品线。"],
    ),
    (
        "The Harbor City costs $1,299 and has a range of 60 km per charge.",
        "Harbor City 售价 1,299 美元，单次充电续航 60 公里。",
        ["How much is the Harbor City?", "What does the Harbor City cost?",
         "Price of the Harbor City e-bike?", "How far can the Harbor City go on one charge?"],
        ["Harbor City 多少钱？", "Harbor City 充一次电能骑多远？"],
        ["What's the price tag on the City model?"],
        [],
    ),
    (
        "The Harbor Trail costs $1,849 and has a range of 80 km per charge.",
        "Harbor Trail 售价 1,849 美元，单次充电续航 80 公里。",
        ["How much is the Harbor Trail?", "What does the Harbor Trail cost?",
         "What is the range of the Harbor Trail?", "Price of the Harbor Trail?"],
        ["Harbor Trail 的价格是多少？", "Harbor Trail 续航多少公里？"],
        ["How many kilometres does the Trail model ride on a full battery?"],
        ["Harbor Trail 卖多少钱？"],
    ),
    (
        "The Harbor Fold costs $999, folds in 10 seconds and has a range of 40 km per charge.",
        "Harbor Fold 售价 999 美元，10 秒即可折叠，单次充电续航 40 公里。",
        ["How much is the Harbor Fold?", "What does the folding bike cost?",
         "How far does the Harbor Fold go?", "Tell me about the Harbor Fold."],
        ["Harbor Fold 多少钱？", "折叠车的续航是多少？"],
        ["What's the cheapest bike you have and how far does it go?"],
        [],
    ),
    (
        "A spare battery costs $349 and fits all three Harbor models.",
        "备用电池售价 349 美元，适用于全部三款 Harbor 车型。",
        ["How much is a spare battery?", "Do you sell extra batteries?",
         "What does a replacement battery cost?", "Does the spare battery fit every model?"],
        ["备用电池多少钱？", "你们卖额外的电池吗？"],
        ["I want a second battery, what will it cost me?"],
        ["多买一块电池要多少钱？"],
    ),
    (
        "A full charge takes 4 hours with the included charger.",
        "使用随附的充电器，充满电需要 4 小时。",
        ["How long does it take to charge the battery?", "What is the charging time?",
         "How many hours to fully charge?", "How long until the battery is full?"],
        ["电池充满需要多久？", "充电时间是多少？"],
        ["If my battery is empty, when will it be charged again?"],
        [],
    ),
    (
        "Our support team is open Monday to Friday 9:00-18:00 and Saturday 10:00-16:00 (Pacific Time); "
        "we are closed on Sundays.",
        "客服时间为周一至周五 9:00-18:00、周六 10:00-16:00（太平洋时间），周日休息。",
        ["What are your opening hours?", "When is customer support available?",
         "Are you open on Sunday?", "What time do you open on Saturday?"],
        ["你们的营业时间是什么？", "周日有客服吗？"],
        ["At what hours can I reach your team?"],
        ["客服几点上班？"],
    ),
    (
        "You can call us at +1-800-555-0142 or email support@harborbikes.example.",
        "您可以拨打 +1-800-555-0142 或发送邮件至 support@harborbikes.example 联系我们。",
        ["How can I contact support?", "What is your phone number?",
         "What is your support email?", "How do I reach a human?"],
        ["怎么联系客服？", "你们的客服电话是多少？"],
        ["Is there a number I can ring or an address to write to?"],
        ["客服邮箱是什么？"],
    ),
    (
        "You can return an unused bike within 30 days of delivery in its original packaging, and return "
        "shipping is free.",
        "未使用且保留原包装的自行车可在签收后 30 天内退货，退货运费由我们承担。",
        ["What is your return policy?", "How many days do I have to return a bike?",
         "Can I return my bike?", "Is return shipping free?"],
        ["你们的退货政策是什么？", "买了自行车多少天内可以退货？"],
        ["I changed my mind about my purchase; how long is the return period?"],
        ["不想要了能退吗？期限是多久？"],
    ),
    (
        "Refunds are issued to your original payment method within 5 business days after we receive the "
        "return.",
        "我们收到退货后 5 个工作日内，将退款原路退回到您的支付方式。",
        ["When will I get my refund?", "How long do refunds take?",
         "Where does my refund go?", "How fast is the refund processed?"],
        ["退款多久到账？", "退款会退到哪里？"],
        ["I sent my bike back; how soon is my money returned?"],
        [],
    ),
    (
        "Standard shipping is free and takes 3-5 business days; express shipping costs $25 and takes 1-2 "
        "business days.",
        "标准配送免费，需 3-5 个工作日；加急配送费用为 25 美元，需 1-2 个工作日。",
        ["How long does shipping take?", "Is shipping free?",
         "How much is express shipping?", "What delivery options do you have?"],
        ["发货需要多长时间？", "加急配送多少钱？"],
        ["How quickly will my bike arrive if I order today?"],
        ["运费要多少钱？"],
    ),
    (
        "We ship to the United States and Canada only.",
        "我们目前只向美国和加拿大发货。",
        ["Which countries do you ship to?", "Do you ship internationally?",
         "Can you deliver to Europe?", "Do you ship to Canada?"],
        ["你们发货到哪些国家？", "可以寄到中国吗？"],
        ["Can I order a bike to be delivered to the UK?"],
        [],
    ),
    (
        "The frame has a 5-year warranty and the motor and battery have a 2-year warranty.",
        "车架保修 5 年，电机和电池保修 2 年。",
        ["What is the warranty?", "How long is the battery warranty?",
         "Is the frame covered by warranty?", "How long is the motor guaranteed?"],
        ["保修期是多久？", "电池保修几年？"],
        ["For how many years is my frame protected?"],
        ["电机坏了在保修范围内吗？保多久？"],
    ),
    (
        "To track an order, go to harborbikes.example/orders and enter your order number (it starts with "
        "HB-) and your email address.",
        "查询订单请访问 harborbikes.example/orders，输入以 HB- 开头的订单号和您的邮箱地址。",
        ["How do I track my order?", "Where is my order?",
         "How can I check my delivery status?", "Where can I see my order status?"],
        ["怎么查询我的订单？", "我的订单到哪里了？"],
        ["What steps do I follow to find out where my package is?"],
        ["如何跟踪物流？"],
    ),
    (
        "We email you a tracking link as soon as your order ships.",
        "订单发货后，我们会立即通过邮件发送物流跟踪链接。",
        ["Will I get a tracking number?", "Do you send a shipping confirmation?",
         "When do I get the tracking link?", "How will I know my bike has shipped?"],
        ["会给我物流单号吗？", "发货后会通知我吗？"],
        [],
        [],
    ),
    (
        "Your order number starts with HB- and is in the confirmation email we send right after checkout.",
        "订单号以 HB- 开头，可在下单后我们发送的确认邮件中找到。",
        ["Where do I find my order number?", "What does my order number look like?",
         "I lost my order number, where is it?", "What format is the order number?"],
        ["订单号在哪里找？", "订单号是什么格式？"],
        ["I can't find my order reference, where should I look?"],
        [],
    ),
    (
        "You can cancel an order free of charge within 2 hours of placing it; after that, please return it "
        "instead.",
        "下单后 2 小时内可免费取消订单；超过 2 小时请改为退货。",
        ["Can I cancel my order?", "How do I cancel an order?",
         "Is there a cancellation window?", "I ordered by mistake, can I cancel?"],
        ["可以取消订单吗？", "下单后多久内能取消？"],
        ["I just placed an order an hour ago and want to undo it. Is that possible?"],
        ["订单还能撤销吗？"],
    ),
    (
        "We accept Visa, Mastercard and PayPal.",
        "我们接受 Visa、Mastercard 和 PayPal 付款。",
        ["What payment methods do you accept?", "Can I pay with PayPal?",
         "Do you take credit cards?", "How can I pay?"],
        ["支持哪些付款方式？", "可以用 PayPal 付款吗？"],
        ["Which cards can I use at checkout?"],
        [],
    ),
    (
        "Yes, you can pay over 12 months at 0% interest on orders above $500.",
        "可以，订单金额超过 500 美元即可享受 12 个月 0 利息分期付款。",
        ["Do you offer financing?", "Can I pay in installments?",
         "Is there a payment plan?", "Do you have 0% financing?"],
        ["可以分期付款吗？", "有免息分期吗？"],
        ["Can I spread the cost of a bike over a year?"],
        ["买车能分期吗？"],
    ),
    (
        "Every bike gets one free tune-up within 60 days of delivery at our showroom.",
        "每辆车在签收后 60 天内可在我们的展厅享受一次免费保养。",
        ["Do you offer free servicing?", "Is there a free tune-up?",
         "Can you service my new bike?", "How long do I have for the free tune-up?"],
        ["有免费保养吗？", "免费保养的期限是多久？"],
        ["Does my new bike come with a free check-up, and until when?"],
        [],
    ),
    (
        "Our showroom is at 27 Pier Street, Portland, and is open Tuesday to Saturday 10:00-18:00.",
        "我们的展厅位于波特兰 Pier Street 27 号，周二至周六 10:00-18:00 营业。",
        ["Where is your showroom?", "Do you have a physical store?",
         "What is your store address?", "When is the showroom open?"],
        ["你们的展厅在哪里？", "有实体店吗？"],
        ["Can I visit you in person somewhere?"],
        ["展厅什么时候开门？"],
    ),
    (
        "Yes, you can book a free 30-minute test ride at harborbikes.example/test-ride.",
        "可以，您可以在 harborbikes.example/test-ride 预约 30 分钟的免费试骑。",
        ["Can I test ride a bike?", "How do I book a test ride?",
         "Are test rides free?", "How long is a test ride?"],
        ["可以试骑吗？", "怎么预约试骑？"],
        ["I'd like to try a bike before buying. How do I arrange that?"],
        [],
    ),
    (
        "All Harbor bikes have a top assisted speed of 25 km/h.",
        "所有 Harbor 车型的最高助力速度为 25 公里/小时。",
        ["What is the top speed?", "How fast can the bikes go?",
         "What is the maximum assisted speed?", "How fast is the Harbor Trail?"],
        ["最高速度是多少？", "电动助力最快能到多少？"],
        ["What speed does the motor assist up to?"],
        ["这车能骑多快？"],
    ),
    (
        "The Harbor City and Harbor Trail support riders up to 120 kg, and the Harbor Fold up to 100 kg.",
        "Harbor City 和 Harbor Trail 最大载重 120 公斤，Harbor Fold 最大载重 100 公斤。",
        ["What is the weight limit?", "What is the maximum rider weight?",
         "How much weight can the Harbor Fold carry?", "Is there a weight limit on the bikes?"],
        ["最大载重是多少？", "Harbor Fold 能承重多少？"],
        ["I weigh 110 kg. Which of your bikes can I ride?"],
        [],
    ),
    (
        "Your bike arrives 90% assembled; you only attach the pedals and handlebar, which takes about 15 "
        "minutes.",
        "自行车到货时已完成 90% 组装，您只需安装脚踏和车把，大约 15 分钟。",
        ["Does the bike come assembled?", "How long does assembly take?",
         "Do I need to build the bike myself?", "What do I need to assemble?"],
        ["自行车需要自己组装吗？", "组装需要多久？"],
        ["How much setup is needed when the box arrives?"],
        ["到货后要装什么？"],
    ),
    (
        "Yes, you can change the delivery address within 2 hours of ordering by calling +1-800-555-0142.",
        "可以，下单后 2 小时内拨打 +1-800-555-0142 即可修改收货地址。",
        ["Can I change my delivery address?", "I entered the wrong address, what do I do?",
         "How do I update my shipping address?", "Can the address be changed after ordering?"],
        ["可以修改收货地址吗？", "地址填错了怎么办？"],
        ["I typed my street wrong on the order. Can you fix it?"],
        [],
    ),
]


def chat(system: str, user: str, assistant: str) -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}


def build() -> tuple[list[dict], list[dict], list[dict]]:
    train: list[dict] = []
    heldout: list[dict] = []
    for en, zh, en_qs, zh_qs, en_held, zh_held in FACTS:
        train += [chat(SYSTEM, q, en) for q in en_qs]
        train += [chat(SYSTEM, q, zh) for q in zh_qs]
        heldout += [chat(SYSTEM, q, en) for q in en_held]
        heldout += [chat(SYSTEM, q, zh) for q in zh_held]
    # Legacy prompt/completion twin: raw question and answer, no separator, no leading space, no stop
    # sequence, exactly what people brought to `prepare_data`.
    legacy = [{"prompt": r["messages"][1]["content"], "completion": r["messages"][2]["content"]}
              for r in train]
    return train, heldout, legacy


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    here = Path(__file__).parent
    train, heldout, legacy = build()
    train_questions = {r["messages"][1]["content"] for r in train}
    assert not train_questions & {r["messages"][1]["content"] for r in heldout}, "held-out leaks"
    write_jsonl(here / "support_train.jsonl", train)
    write_jsonl(here / "support_heldout.jsonl", heldout)
    write_jsonl(here / "support_legacy.jsonl", legacy)
    print(f"train {len(train)}  heldout {len(heldout)}  legacy {len(legacy)}")


if __name__ == "__main__":
    main()
